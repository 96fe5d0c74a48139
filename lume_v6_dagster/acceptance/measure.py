"""Measurements of trained models on validation tracks: mode recovery, 128-D use, frames over time, latency."""

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from lume_v6_dagster import contract, noise, temporal
from lume_v6_dagster.models.flow import frames_db
from lume_v6_dagster.training.metrics import frechet_distance

OVER_TIME_SECONDS = 10.0  # each window: what a dancer hears in 10 s, generated frame by frame at the pair rate
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

    @torch.no_grad()
    def controls_of(self, latent: np.ndarray, conditioning: np.ndarray) -> np.ndarray:
        """The controls SAN makes of given dB latents (generated or the real music's) and the same body."""
        c = torch.from_numpy(np.ascontiguousarray(conditioning))
        return self.san(torch.from_numpy(np.ascontiguousarray(latent, dtype=np.float32)), c[:, contract.DYNAMICS_SLICE]).numpy()

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
    """Gate 5's classifier, fitted on `rows` real training frames at most (evenly drawn from every track)."""
    fit = random_rows(len(modes), rows, 0)
    return fit_mode_classifier(latents[fit], modes[fit])


def real_mode_accuracy(classify, latents: np.ndarray, modes: np.ndarray) -> float:
    """The classifier on real music of tracks it was not fitted on (the validation tracks): what a generator
    that reproduced the music exactly would score. Frames of its own training tracks, near-duplicates at
    30 Hz of what it was fitted on, would flatter it."""
    return float((classify(latents) == modes).mean())


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
    return {"accuracy": correct / (len(contract.MODES) * len(conditioning)), "generated": generated}


def mode_distances(by_mode: dict[int, np.ndarray], stats_latent: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(modes, modes) Frechet distances between the modes' dB latents, in the normalised units of gate 3.

    In dB^2 a shift of 0.09 dB in every band is already 0.5; normalised, generated modes are read
    against the real music's own distances between modes.
    """
    mean, std = stats_latent
    x = {m: ((v - mean) / std).astype(np.float64) for m, v in by_mode.items()}
    n = len(contract.MODES)
    distance = np.full((n, n), np.nan)
    for a in x:
        for b in x:
            if a < b:
                distance[a, b] = distance[b, a] = frechet_distance(x[a], x[b])
    return distance


def real_by_mode(latents: np.ndarray, modes: np.ndarray, rows: int = 20_000) -> dict[int, np.ndarray]:
    """Real latents of each mode present (at most `rows` per mode, drawn evenly), the reference of `mode_distances`."""
    of = {int(m): latents[modes == m] for m in np.unique(modes)}
    return {m: x[random_rows(len(x), rows, 0)] for m, x in of.items()}


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
    """(W, K * dims): each window's K frames, reduced to `axes`, side by side (only those rows: a bootstrap
    draw reads a few thousand of the validation set's rows, 270 K on the full profile)."""
    return (x[windows].astype(np.float64) @ axes).reshape(len(windows), -1)


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


def sequence_fd_interval(fake: np.ndarray, real: np.ndarray, windows: np.ndarray, axes: np.ndarray, n: int = 100,
                         seed: int = 0) -> tuple[float, float, float]:
    """Sequence FD and its 90% bootstrap interval over windows (resampled with replacement)."""
    rng = np.random.default_rng(seed)
    draws = [sequence_fd(fake, real, windows[rng.integers(0, len(windows), len(windows))], axes) for _ in range(n)]
    return sequence_fd(fake, real, windows, axes), float(np.percentile(draws, 5)), float(np.percentile(draws, 95))


SETTLED = 0.004  # weight the glide's start may keep when a window begins
# Frames generated before each window, so even the slowest level glide is in its steady state, as mid-session: 53 for EMA 0.1.
RUN_IN = math.ceil(math.log(SETTLED) / math.log(1 - min(noise.LEVEL_EMA_GRID)))


def with_run_in(windows: np.ndarray, track: np.ndarray) -> np.ndarray:
    """(W, RUN_IN + K) rows: each window with the RUN_IN rows of its track before it (its track's first row
    repeated where the track starts later: a glide from there, as from a session's start)."""
    first = np.maximum.accumulate(np.where(np.r_[True, track[1:] != track[:-1]], np.arange(len(track)), 0))
    before = np.maximum(windows[:, :1] - np.arange(RUN_IN, 0, -1), first[windows[:, :1]])
    return np.concatenate([before, windows], axis=1)


def played(latents: np.ndarray, process, modes: np.ndarray) -> np.ndarray:
    """(W, K, bands) dB windows as the app plays them, from (W, RUN_IN + K, bands) generated with `with_run_in`."""
    return process.smooth(latents, modes)[:, RUN_IN:]


def _long_windows(val: dict[str, np.ndarray], per_track: int, rate_hz: float) -> np.ndarray:
    n_tracks = len(np.unique(val["track"]))
    return temporal.consecutive_windows(val["t"], val["track"], int(OVER_TIME_SECONDS * rate_hz), per_track * n_tracks)


OVER_TIME_CONTROLS = ("loudness_db", "onset_strength")  # the controls the AudioEngine leans on most, shown alone
SAN_ON_REAL_MUSIC = ".san_on_real_music"  # key suffix of the rows whose controls SAN made of the real latents


def over_time_detail(pipe: Pipeline, process, val: dict[str, np.ndarray], per_track: int,
                     rate_hz: float = 30.0) -> dict[str, dict[str, float]]:
    """The shipped frames of `over_time`'s windows (same noise and glide) per mode, and SAN's controls made from them.

    Keys: each validated mode (`_mode_row`), `controls` (medians over SAN's 16 against the real
    controls) and each of OVER_TIME_CONTROLS alone; then the same control rows with SAN_ON_REAL_MUSIC:
    SAN fed the real latents of the windows, so a controls gap reads as SAN's own (there too) or the
    generated frames' (only above). Each row says how many windows it read.
    """
    long = _long_windows(val, per_track, rate_hz)
    cond = val["conditioning"][long.ravel()]
    window_modes = contract.modes_of(val["conditioning"][long[:, 0]])
    ran = with_run_in(long, val["track"])
    generated = pipe.latents(val["conditioning"][ran.ravel()], process.for_tracks(val, 0)[ran.ravel()]).reshape(*ran.shape, -1)
    latent = played(generated, process, window_modes)
    controls = pipe.controls_of(latent.reshape(len(cond), -1), cond).reshape(*long.shape, -1)  # what the AudioEngine receives
    from_music = pipe.controls_of(val["latent"][long.ravel()], cond).reshape(*long.shape, -1)
    out = {}
    for m in np.unique(window_modes):
        w = window_modes == m
        out[contract.MODES[m]] = _mode_row(latent[w], controls[w], val["latent"][long[w]], val["controls"][long[w]], from_music[w], rate_hz)
    for suffix, made in (("", controls), (SAN_ON_REAL_MUSIC, from_music)):
        out.update(_control_rows(made, val["controls"][long], suffix))
    return out


def _mode_row(latent: np.ndarray, controls: np.ndarray, real_latent: np.ndarray, real_controls: np.ndarray,
              from_music: np.ndarray, rate_hz: float) -> dict[str, float]:
    """One mode's played windows against its real music, with SAN's loudness made of them (which mode's loudness flickers)
    and of the real music (whether SAN flickers on its own: on the simulator's pads it did, 4 x), how much louder
    they play at the median level (a glide once played a pad 5 dB quieter than it was made), and their gaps per
    minute beside the music's (`temporal.gaps_per_minute`, both below the music's median level)."""
    i = contract.CONTROL_NAMES.index("loudness_db")
    loudness = {key: temporal.compare(made[..., i:i + 1], real_controls[..., i:i + 1])["change_ratio"]
                for key, made in (("san_loudness_change_ratio", controls), ("san_loudness_change_ratio_on_music", from_music))}
    return {**temporal.compare_frames(latent, real_latent), **loudness,
            "level_vs_music_db": temporal.median_level_shift(latent, real_latent), **_gaps(latent, real_latent, rate_hz),
            "windows": len(latent)}


def _gaps(latent: np.ndarray, real_latent: np.ndarray, rate_hz: float) -> dict[str, float]:
    music_db = float(np.median(temporal.level(real_latent)))
    return {"gaps_per_min": temporal.gaps_per_minute(latent, music_db, rate_hz),
            "gaps_per_min_real": temporal.gaps_per_minute(real_latent, music_db, rate_hz)}


def _control_rows(made: np.ndarray, real: np.ndarray, suffix: str) -> dict[str, dict[str, float]]:
    """`controls` (medians over all 16) and each of OVER_TIME_CONTROLS alone, against the real controls."""
    rows = {"controls": temporal.compare(made, real)}
    for name in OVER_TIME_CONTROLS:
        i = contract.CONTROL_NAMES.index(name)
        rows[name] = temporal.compare(made[..., i:i + 1], real[..., i:i + 1])
    return {name + suffix: {**row, "windows": len(real)} for name, row in rows.items()}


def training_windows(train: dict[str, np.ndarray], val: dict[str, np.ndarray], long: np.ndarray, per_track: int,
                     rate_hz: float = 30.0) -> np.ndarray:
    """For each validation window, a training window of the same mode (taken in turn; none where the mode has none):
    the music a generator that replayed its training tracks exactly would play in its place."""
    pool = _long_windows(train, per_track, rate_hz)
    pool_modes = contract.modes_of(train["conditioning"][pool[:, 0]])
    taken: dict[int, int] = {}
    rows = []
    for m in contract.modes_of(val["conditioning"][long[:, 0]]):
        of_mode = pool[pool_modes == m]
        if len(of_mode):
            rows.append(of_mode[taken.get(m, 0) % len(of_mode)])
            taken[m] = taken.get(m, 0) + 1
    return np.array(rows, dtype=np.intp).reshape(-1, long.shape[1])


def over_time(samplers: dict[str, tuple], train: dict[str, np.ndarray], val: dict[str, np.ndarray],
              stats_latent: tuple[np.ndarray, np.ndarray], axes: np.ndarray, per_track: int,
              rate_hz: float = 30.0, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per sampler (name -> encoder, generator, noise process, steps): `per_track` windows per validation track against the real music,
    each window drawn and glided by the sampler's process as the app plays it (its draw `seed`: the gate reads 0).

    Figures from `temporal.compare` with the lag-1 gap's 90% bootstrap interval over windows, plus the sequence FD
    (K-frame windows, reduced to `axes`) with its own and the per-frame FD of the same frames (normalised units);
    "real vs real" compares alternate windows of the real music with each other, the floor any
    generator is read against (`frame_fd_floor` in every row). "training music" puts the real
    music of training windows of the same modes in the generator's place: what replaying the
    training tracks would score (`frame_fd_training` in every row). Far above the floor, it says the
    validation music is not like the training music (too few tracks), which no recipe can fix.
    """
    long = _long_windows(val, per_track, rate_hz)
    short = _short(long)
    mean, std = stats_latent
    real = (val["latent"] - mean) / std
    a, b = long[0::2], long[1::2]
    floor = frechet_distance(real[a.ravel()].astype(np.float64), real[b.ravel()].astype(np.float64))
    replay = training_windows(train, val, long, per_track, rate_hz)
    replayed = (train["latent"] - mean) / std
    by_training = (frechet_distance(replayed[replay.ravel()].astype(np.float64), real[long.ravel()].astype(np.float64))
                   if len(replay) else float("nan"))  # no training track holds a window that long
    window_modes = contract.modes_of(val["conditioning"][long[:, 0]])
    own, ran = np.arange(long.size).reshape(long.shape), with_run_in(long, val["track"])  # `own`: each window's frames in `made`
    out = {}
    for name, (enc, gen, process, steps) in samplers.items():
        noise = process.for_tracks(val, seed)
        made = frames_db(enc, gen.flow, val["conditioning"][ran.ravel()], noise[ran.ravel()], steps).reshape(*ran.shape, -1)
        made = played(made, process, window_modes)
        figures = temporal.compare_frames(made, val["latent"][long])
        heard = (made.reshape(long.size, -1) - mean) / std
        fd, lo, hi = sequence_fd_interval(heard, real[long.ravel()], _short(own), axes)
        frame_fd = frechet_distance(heard.astype(np.float64), real[long.ravel()].astype(np.float64))
        gap_lo, gap_hi = temporal.lag1_gap_interval(made, val["latent"][long], seed=seed)
        out[name] = {**figures, "sequence_fd": fd, "sequence_fd_lo": lo, "sequence_fd_hi": hi, "windows": len(long),
                     "lag1_gap_lo": gap_lo, "lag1_gap_hi": gap_hi, "frame_fd": frame_fd, "frame_fd_floor": floor, "frame_fd_training": by_training}
    reference = {"sequence_fd_lo": float("nan"), "sequence_fd_hi": float("nan"), "lag1_gap_lo": float("nan"), "lag1_gap_hi": float("nan"),
                 "frame_fd_floor": floor, "frame_fd_training": by_training}
    if len(replay):
        out["training music"] = {**temporal.compare_frames(train["latent"][replay], val["latent"][long]), "windows": len(replay), **reference,
                                 "sequence_fd": frechet_distance(_flat(replayed, _short(replay), axes), _flat(real, short, axes)),
                                 "frame_fd": by_training}
    out["real vs real"] = {**temporal.compare_frames(val["latent"][a], val["latent"][b]), "windows": len(long), **reference,
                           "sequence_fd": frechet_distance(_flat(real, _short(a), axes), _flat(real, _short(b), axes)),
                           "frame_fd": floor}
    return out
