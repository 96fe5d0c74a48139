"""Sample-quality metrics shared by training and acceptance."""

from concurrent.futures import Executor

import numpy as np
from scipy import linalg


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two (n, d) sample sets."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def bootstrap_interval(fake: np.ndarray, real: np.ndarray, n: int, seed: int = 0, level: float = 0.9,
                       pool: Executor | None = None) -> tuple[float, float]:
    """Percentile interval of the Frechet distance over `n` resamples of the paired rows.

    Row i of `fake` was generated from the conditioning of real row i, so pairs are resampled together.
    The resamples are drawn in turn and measured on the `pool`'s threads: the same interval on any count.
    """
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, len(real), len(real)) for _ in range(n)]
    draws = list((pool.map if pool else map)(lambda rows: frechet_distance(fake[rows], real[rows]), resamples))
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
