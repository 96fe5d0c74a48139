"""Figures of music frames over time: what a dancer hears is a sequence at the pair rate.

Per band (64 log-mel bands, dB), over windows of consecutive frames of one track: the mean
frame-to-frame change, the lag-1 and lag-8 autocorrelation, and the spread over time. A
sequence of one-step frames each plausible on its own can still flicker: these figures see it.
"""

from __future__ import annotations

import numpy as np

LAGS = (1, 8)  # 33 ms (flicker) and 0.27 s (a beat's worth of structure) at 30 Hz


def breaks(t: np.ndarray, track: np.ndarray) -> np.ndarray:
    """(N - 1,) True where row i + 1 does not follow row i: another track, or a dropout gap in between."""
    step = np.median(np.diff(t)[np.diff(track) == 0]) if len(t) > 1 else 0.0
    return (np.diff(track) != 0) | (np.abs(np.diff(t) - step) > 0.5 * step)


def consecutive_windows(t: np.ndarray, track: np.ndarray, k: int, most: int) -> np.ndarray:
    """(W, k) row indices of windows of k consecutive pairs of one track (no dropout gap inside), at most `most`, evenly spread."""
    broken = np.concatenate([[0], np.cumsum(breaks(t, track))])  # gaps before each row
    starts = np.nonzero(broken[k - 1:] == broken[: len(broken) - k + 1])[0]
    starts = starts[:: max(1, -(-len(starts) // most))]
    return starts[:, None] + np.arange(k)


def band_figures(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per band, over (W, T, bands) windows: mean |x[t] - x[t-1]|, lag-k autocorrelation within each window, std over time."""
    centred = x - x.mean(1, keepdims=True)
    power = (centred ** 2).sum(1) + 1e-12
    out = {"change": np.abs(np.diff(x, axis=1)).mean((0, 1)), "spread": x.std(1).mean(0)}
    out.update({f"lag{k}": ((centred[:, k:] * centred[:, :-k]).sum(1) / power).mean(0) for k in LAGS})
    return out


def compare(fake: np.ndarray, real: np.ndarray) -> dict[str, float]:
    """Generated against real windows: change and spread as ratios, autocorrelations side by side (medians over bands)."""
    f, r = band_figures(fake), band_figures(real)
    out = {"change_ratio": float(np.median(f["change"] / r["change"])), "spread_ratio": float(np.median(f["spread"] / r["spread"]))}
    for k in LAGS:
        out[f"lag{k}"], out[f"lag{k}_real"] = float(np.median(f[f"lag{k}"])), float(np.median(r[f"lag{k}"]))
    return out
