"""Measurements of trained models on validation tracks: mode recovery, 128-D use, frames over time, latency."""

import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from lume_v6_dagster import contract, temporal
from lume_v6_dagster.training.metrics import frechet_distance

OVER_TIME_SECONDS = 10.0  # each window: what a dancer hears in 10 s, generated frame by frame at the pair rate
OVER_TIME_PER_TRACK = 4
SEQUENCE_FRAMES = 8  # K consecutive pairs per window of the sequence FD (0.27 s at 30 Hz)
SEQUENCE_AXES = 8  # each frame reduced to the leading principal axes of the training latents
AXES_ROWS = 20_000  # training frames the principal axes are fitted on


@dataclass
class Pipeline:
    """The shipped chain in PyTorch: encoder -> one-step generator -> SAN (twin)."""

    encoder: torch.nn.Module
    generator: torch.nn.Module  # OneStepGenerator: (embedding, noise) -> latent dB
    san: torch.nn.Module  # SANTwin: (latent dB, dynamics) -> controls

    @torch.no_grad()
    def latents(self, conditioning: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return self._latent(torch.from_numpy(conditioning), torch.from_numpy(noise)).numpy()

    def _latent(self, c, z):
        return self.generator.batched(self.encoder(c), z)

    def controls(self, c, z):
        return self.san(self._latent(c, z), c[:, contract.DYNAMICS_SLICE])


def with_mode(conditioning: np.ndarray, mode: int) -> np.ndarray:
    """The same rows with the mode one-hot set to `mode`."""
    out = conditioning.copy()
    out[:, contract.MODE_SLICE] = 0.0
    out[:, contract.MODE_SLICE.start + mode] = 1.0
    return out


def random_rows(n_total: int, n: int, seed: int) -> np.ndarray:
    """`n` of `n_total` row indices (all of them if fewer), drawn at random, in order."""
    return np.sort(np.random.default_rng(seed).choice(n_total, min(n, n_total), replace=False))


def mode_classifier(latents: np.ndarray, modes: np.ndarray, rows: int = 20_000):
    """(predict, accuracy on real music): fitted on `rows` training frames at most (or half of them),
    then scored on as many of the others, what a generator reproducing the music exactly would score."""
    fit = random_rows(len(modes), min(rows, len(modes) // 2), 0)
    classify = fit_mode_classifier(latents[fit], modes[fit])
    unseen = np.setdiff1d(np.arange(len(modes)), fit)
    unseen = unseen[:: max(1, len(unseen) // rows)]  # from every training track
    return classify, float((classify(latents[unseen]) == modes[unseen]).mean())


def fit_mode_classifier(latents: np.ndarray, modes: np.ndarray, seed: int = 0, steps: int = 300):
    """Softmax regression on real latents (standardised); returns a predict function."""
    mean, std = latents.mean(0), latents.std(0) + 1e-6
    x = torch.from_numpy(((latents - mean) / std).astype(np.float32))
    y = torch.from_numpy(modes.astype(np.int64))
    torch.manual_seed(seed)
    model = torch.nn.Linear(x.shape[1], len(contract.MODES))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return lambda z: model(torch.from_numpy(((z - mean) / std).astype(np.float32))).argmax(1).numpy()


def mode_conditioning(pipe: Pipeline, classify, conditioning: np.ndarray, noise: np.ndarray) -> dict:
    """Counterfactual test: same body, emotion and noise (the model's own process), each mode in turn.

    The classifier (trained on real music) must recover the mode asked for; a model that
    ignores the mode produces five identical sets and scores chance.
    """
    generated = {m: pipe.latents(with_mode(conditioning, m), noise) for m in range(len(contract.MODES))}
    correct = sum(int((classify(g) == m).sum()) for m, g in generated.items())
    n = len(contract.MODES)
    distance = np.zeros((n, n))
    for a in range(n):
        for b in range(a + 1, n):
            distance[a, b] = distance[b, a] = frechet_distance(generated[a].astype(np.float64), generated[b].astype(np.float64))
    return {"accuracy": correct / (n * len(conditioning)), "distance": distance, "generated": generated}


def principal_axes(x: np.ndarray, dims: int) -> np.ndarray:
    """(D, dims) leading principal axes of (n, D) training latents: the reduced space of the sequence FD."""
    x = x.astype(np.float64)
    _, _, vt = np.linalg.svd(x - x.mean(0), full_matrices=False)
    return vt[:dims].T


def sequence_axes(train_latent: np.ndarray, stats) -> np.ndarray:
    """The reduced space of the sequence FD: leading principal axes of normalised training latents (dB in, `stats` of the split)."""
    mean, std = stats.arrays("latent")
    sample = train_latent[random_rows(len(train_latent), AXES_ROWS, 0)]
    return principal_axes((sample - mean) / std, SEQUENCE_AXES)


def sequence_fd(fake: np.ndarray, real: np.ndarray, windows: np.ndarray, axes: np.ndarray) -> float:
    """Frechet distance between windows of consecutive frames (each frame reduced to `axes`), generated vs real.

    A generator whose frames are each plausible but flicker from one frame to the next is far
    from the music here, though not in a per-frame FD.
    """
    return frechet_distance(_flat(fake, windows, axes), _flat(real, windows, axes))


def _flat(x: np.ndarray, windows: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """(W, K * dims): each window's K frames, reduced to `axes`, side by side."""
    return (x.astype(np.float64) @ axes)[windows].reshape(len(windows), -1)


def _short(long: np.ndarray) -> np.ndarray:
    """The SEQUENCE_FRAMES-frame windows that tile each long window."""
    return np.concatenate([long[:, j:j + SEQUENCE_FRAMES] for j in range(0, long.shape[1] - SEQUENCE_FRAMES + 1, SEQUENCE_FRAMES)])


def block_sensitivity(pipe: Pipeline, conditioning: np.ndarray, dyn_std: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
    """Mean |d output / d normalised input| per dynamics dim, for the latent and the controls."""
    c = torch.from_numpy(conditioning).requires_grad_(True)
    z = torch.from_numpy(noise)
    out = {}
    for name, fn in (("latent", pipe._latent), ("controls", pipe.controls)):
        y, grads = fn(c, z), []
        for k in range(y.shape[1]):  # one backward per output dim, through one forward graph
            (g,) = torch.autograd.grad(y[:, k].sum(), c, retain_graph=True)
            grads.append(g[:, contract.DYNAMICS_SLICE].abs().mean(0).numpy() * dyn_std)
        out[name] = np.mean(grads, axis=0)
    return out


def sensitivity_ratio(per_dim: np.ndarray) -> float:
    """Sensitivity to dims 64-127 as a fraction of that to dims 0-63."""
    return float(per_dim[contract.V5_DYNAMICS_DIM:].mean() / (per_dim[: contract.V5_DYNAMICS_DIM].mean() + 1e-12))


class ShippedFrame(torch.nn.Module):
    """Exactly the shipped per-frame path: encoder -> one generator evaluation -> SAN."""

    def __init__(self, pipe: Pipeline):
        super().__init__()
        self.encoder, self.generator, self.san = pipe.encoder, pipe.generator, pipe.san

    def forward(self, c, z):
        return self.san(self.generator(self.encoder(c), z), c[:, contract.DYNAMICS_SLICE])


@torch.no_grad()
def latency_ms(pipe: Pipeline, repeats: int = 200) -> float:
    """Median per-frame time of encoder + flow + SAN at batch 1 on this CPU.

    Timed as a frozen graph, as Core ML runs it: eager PyTorch adds ~0.3 ms of per-op
    dispatch at batch 1 that no device runtime pays. torch.jit is deprecated for
    torch.compile, but compile measured 0.35 ms after 22 s of compiling against 0.22 ms for
    a frozen trace (bench/inference.py); torch is pinned, so the trace stays.
    """
    c = torch.zeros(1, contract.CONDITIONING_DIM)
    z = torch.zeros(1, contract.LATENT_DIM)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.jit")
        frame = torch.jit.freeze(torch.jit.trace(ShippedFrame(pipe).eval(), (c, z)))
    return median_ms(lambda: frame(c, z), repeats)


def median_ms(fn, repeats: int, warmup: int = 10) -> float:
    """Median wall time of `fn()` in ms, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


@torch.no_grad()
def frames(encoder: torch.nn.Module, generator: torch.nn.Module, conditioning: np.ndarray, noise: np.ndarray, steps: int = 1) -> np.ndarray:
    """dB latents of many frames at once (the same step as the app's batch-1 calls), `steps` > 1 for the multi-step sampler."""
    c = torch.from_numpy(np.ascontiguousarray(conditioning[:, : encoder.cfg.in_dim]))
    flow = generator.flow
    return flow.denormalize(flow.sample(encoder(c), torch.from_numpy(noise), steps=steps)).numpy()


def sequence_fd_interval(fake: np.ndarray, real: np.ndarray, windows: np.ndarray, axes: np.ndarray, n: int = 100,
                         seed: int = 0) -> tuple[float, float, float]:
    """Sequence FD and its 90% bootstrap interval over windows (resampled with replacement)."""
    rng = np.random.default_rng(seed)
    draws = [sequence_fd(fake, real, windows[rng.integers(0, len(windows), len(windows))], axes) for _ in range(n)]
    return sequence_fd(fake, real, windows, axes), float(np.percentile(draws, 5)), float(np.percentile(draws, 95))


def over_time(samplers: dict[str, tuple], val: dict[str, np.ndarray], stats_latent: tuple[np.ndarray, np.ndarray],
              axes: np.ndarray, rate_hz: float = 30.0) -> dict[str, dict[str, float]]:
    """Per sampler (name -> encoder, generator, noise process, steps): its windows of validation frames against the real music.

    Figures from `temporal.compare`, plus the sequence FD (K-frame windows, reduced to `axes`)
    with its 90% bootstrap interval; "real vs real" compares alternate windows of the real
    music with each other, the floor any generator is read against.
    """
    n_tracks = len(np.unique(val["track"]))
    long = temporal.consecutive_windows(val["t"], val["track"], int(OVER_TIME_SECONDS * rate_hz), OVER_TIME_PER_TRACK * n_tracks)
    short = _short(long)
    mean, std = stats_latent
    real = (val["latent"] - mean) / std
    out = {}
    for name, (enc, gen, process, steps) in samplers.items():
        noise = process.for_tracks(val["track"], 0)
        fake = np.zeros_like(real)
        fake[long.ravel()] = frames(enc, gen, val["conditioning"][long.ravel()], noise[long.ravel()], steps)
        figures = temporal.compare(fake[long], val["latent"][long])
        fake[long.ravel()] = (fake[long.ravel()] - mean) / std
        fd, lo, hi = sequence_fd_interval(fake, real, short, axes)
        out[name] = {**figures, "sequence_fd": fd, "sequence_fd_lo": lo, "sequence_fd_hi": hi, "windows": len(long)}
    a, b = long[0::2], long[1::2]
    out["real vs real"] = {**temporal.compare(val["latent"][a], val["latent"][b]), "windows": len(long),
                           "sequence_fd": frechet_distance(_flat(real, _short(a), axes), _flat(real, _short(b), axes)),
                           "sequence_fd_lo": float("nan"), "sequence_fd_hi": float("nan")}
    return out
