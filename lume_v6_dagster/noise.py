"""The noise the app feeds FlowGenerator1Step, frame after frame: part of the model.

Fresh noise every frame makes one-step music flicker at the frame rate (on the demo profile,
frame-to-frame change 4x the real music's). One AR(1) correlation for every mode smoothed it,
but could not make a sustained mode both slow and varied: its frames drift a little every frame
and never move far within a phrase. Music holds a sound, then moves to the next one. So does the
shipped process, per mode (the app knows the session's mode): each frame keeps the last frame's
noise, drifting by an AR(1) step of correlation `rho`, and with probability `jump` draws it
afresh. Every frame's noise stays N(0, I), the input the generator was trained on. Each mode's
(jump, rho) is fitted per model on training tracks (`fit`), saved in model.pt beside the weights
(one digest covers both) and stated in the bundle's manifest; previews and gates draw from
exactly it.

Each jump redraws the frame's overall level (the summed band power SAN's loudness follows) from
a wide spread, where real music glides: on the demo the level changed 1.64 x the music's, on real
music 2.3 x. So the app also glides the level of the frames it generates (`level_ema` per mode,
fitted after (jump, rho) on the same windows): every band of a frame moves by the same dB, so
the spectrum's shape is the generator's and only its loudness is smoothed. A glide slows every band
with the level, so the fit never takes one that holds the bands longer than the music by more than
GLIDE_LAG1_SLACK while a lighter one is left. An EMA of a level in
dB follows its mean, and where the level dips deep (a pad between notes) the mean lies well below
the typical level: on real music Sky Garden played 5 dB quieter at the median than the generator
made it, with more near-silent frames. The glide's shift of the median level, measured on the same
windows, is added back (`level_offset`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, replace

import numpy as np

from lume_v6_dagster import contract, temporal

JUMP_GRID = (0.0, 0.02, 0.05, 0.1, 0.2)  # 0.02: a new sound every 1.7 s on average at 30 Hz; 0.2: every 5 frames
RHO_GRID = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 1.0)  # 1: held still between jumps
FIT_SECONDS = 10.0  # windows of consecutive frames each mode's process is fitted on
# Gate 3's bound on the spread over time: a process may not buy slow frames with frames that no longer vary.
SPREAD_FLOOR = 0.8
# Weight of the newest frame in the level's EMA. 0.3 still follows a dancer's accent within 0.1 s at 30 Hz;
# 0.2 and 0.1 (a third of a second) are for music whose level moves as slowly as a pad's: the fit picks them only there.
LEVEL_EMA_GRID = (1.0, 0.7, 0.5, 0.3, 0.2, 0.1)
# A glide calms the level by slowing every band: it may not hold the bands (median lag-1) more than this above the
# training music's, while a lighter one is left. Gate 3's goal is 0.05 on held-out windows, read within +-0.02 - 0.03
# on its 20 - 40 windows; without the bound the percussive modes glided to +0.06 - 0.10 on training windows of real music.
GLIDE_LAG1_SLACK = 0.03
KIND = "held-ar1"
UPDATE = ("per frame, u ~ U(0, 1) and e ~ N(0, I): z[t] = e if u < jump, else rho * z[t-1] + sqrt(1 - rho^2) * e; "
          "z[0] = e; jump and rho of the session's mode")
LEVEL_SMOOTHING = ("per generated frame x (dB per band): L[t] = 10 log10(sum of 10^(x/10) over bands); "
                   "s[t] = level_ema * L[t] + (1 - level_ema) * s[t-1], s[0] = L[0]; x += s[t] + level_offset_db - L[t] on every band, "
                   "before SAN and the AudioEngine; level_ema and level_offset_db of the session's mode (1 and 0: unchanged)")


@dataclass(frozen=True)
class ModeNoise:
    """One mode's process: a fresh draw with probability `jump` per frame, else an AR(1) step of `rho`; the frames'
    level then glides with an EMA of weight `level_ema`, raised by `level_offset` dB (`LEVEL_SMOOTHING`)."""

    jump: float
    rho: float
    level_ema: float = 1.0
    level_offset: float = 0.0  # the glide's own shift of the typical level, undone (0 without a glide)


FRESH = ModeNoise(0.0, 0.0)  # new noise every frame: the V5 recipe, and every model before a process shipped


@dataclass(frozen=True)
class NoiseProcess:
    """The noise sequence the app draws for FlowGenerator1Step, and the glide it gives the frames' level:
    one `ModeNoise` per mode (contract.MODES order)."""

    modes: tuple[ModeNoise, ...]
    dim: int = contract.NOISE_DIM
    rate_hz: float = 30.0

    @classmethod
    def same(cls, jump: float = 0.0, rho: float = 0.0, **kw) -> "NoiseProcess":
        """Every mode alike; `same()` is fresh noise every frame, `same(rho=r)` the AR(1) process of earlier models."""
        return cls((ModeNoise(jump, rho),) * len(contract.MODES), **kw)

    def sample(self, frames: int, seed: int, mode: int) -> np.ndarray:
        """(frames, dim) float32: one sequence of `mode`, as the app draws it from the start of a session."""
        rng = np.random.default_rng(seed)
        e, u = rng.standard_normal((frames, self.dim)), rng.random(frames)
        return held(e, u, self.modes[mode]).astype(np.float32)

    def for_tracks(self, arrays: dict[str, np.ndarray], seed: int) -> np.ndarray:
        """(rows, dim) float32 for pairs grouped by track (`track`, `conditioning`): one sequence per track,
        restarted at each new track, of that track's mode."""
        track, modes = arrays["track"], contract.modes_of(arrays["conditioning"])
        rng = np.random.default_rng(seed)
        e, u = rng.standard_normal((len(track), self.dim)), rng.random(len(track))
        starts = np.flatnonzero(np.r_[True, np.diff(track) != 0, True])
        return np.concatenate([held(e[a:b], u[a:b], self.modes[modes[a]]) for a, b in zip(starts[:-1], starts[1:])]).astype(np.float32)

    def smooth(self, frames: np.ndarray, modes: np.ndarray | int) -> np.ndarray:
        """(..., frames, bands) dB sequences as the app plays them: each sequence's level glided by its mode's
        `level_ema` (`modes`: one per sequence, or one for all)."""
        modes = np.broadcast_to(modes, frames.shape[:-2])
        out = frames.copy()
        for m in np.unique(modes):
            out[modes == m] = temporal.smooth_level(frames[modes == m], self.modes[m].level_ema, self.modes[m].level_offset)
        return out

    def describe(self) -> str:
        return "; ".join(f"{name} jump {m.jump:g}, rho {m.rho:g}, level EMA {m.level_ema:g}" + (f" {m.level_offset:+g} dB" if m.level_offset else "")
                         for name, m in zip(contract.MODES, self.modes))

    def as_dict(self) -> dict:
        return {"kind": KIND, "dim": self.dim, "rate_hz": self.rate_hz, "marginal": "N(0, I)", "update": UPDATE,
                "level_smoothing": LEVEL_SMOOTHING,
                "modes": {name: {"jump": m.jump, "rho": m.rho, "level_ema": m.level_ema, "level_offset_db": m.level_offset}
                          for name, m in zip(contract.MODES, self.modes)}}

    @classmethod
    def from_dict(cls, d: dict | None) -> "NoiseProcess":
        """The recorded process; none recorded means fresh noise every frame, "ar1" one correlation for every mode,
        no `level_ema` (models before the glide) frames played as generated, no `level_offset_db` (before it) no offset."""
        if not d:
            return cls.same()
        if d.get("kind") == "ar1":
            return cls.same(rho=float(d["rho"]), dim=int(d["dim"]), rate_hz=float(d["rate_hz"]))
        if d.get("kind") != KIND:
            raise ValueError(f"unknown noise process {d.get('kind')!r}: this code draws {KIND!r} and 'ar1'")
        missing = [m for m in contract.MODES if m not in d.get("modes", {})]
        if missing:
            raise ValueError(f"noise process without a process for mode(s) {', '.join(missing)}")
        modes = tuple(ModeNoise(float(d["modes"][m]["jump"]), float(d["modes"][m]["rho"]), float(d["modes"][m].get("level_ema", 1.0)),
                                float(d["modes"][m].get("level_offset_db", 0.0))) for m in contract.MODES)
        return cls(modes, int(d["dim"]), float(d["rate_hz"]))


def held(e: np.ndarray, u: np.ndarray, m: ModeNoise) -> np.ndarray:
    """The process along axis 0 (frames) from innovations `e` (frames, ..., dim) and uniforms `u` (frames, ...): `UPDATE`.

    Vectorised: one AR(1) filter over the whole sequence, then each run between jumps loses the
    part it inherited from before its jump, y[start - 1] * rho^(t - start + 1).
    """
    from scipy import signal  # 1 s to import: only the processes that draw noise pay it

    jump = u < m.jump
    jump[0] = True  # z[0] = e[0]
    y = signal.lfilter([1.0], [1.0, -m.rho], e * np.where(jump, 1.0, np.sqrt(1 - m.rho ** 2))[..., None], axis=0)
    t = np.arange(len(e)).reshape(-1, *[1] * (u.ndim - 1))
    start = np.maximum.accumulate(np.where(jump, t, 0), axis=0)
    inherited = np.take_along_axis(y, np.maximum(start - 1, 0)[..., None], axis=0)
    return y - np.where(start > 0, m.rho ** (t - start + 1), 0.0)[..., None] * inherited


def mismatch(figures: dict[str, float]) -> float:
    """How differently generated frames move from the real music's: squared log ratios of the frame-to-frame
    change and of 1 - autocorrelation at each lag (a frame's flicker and a beat's structure)."""
    terms = [np.log(figures["change_ratio"])] + [np.log((1 - figures[f"lag{k}"]) / (1 - figures[f"lag{k}_real"])) for k in temporal.LAGS]
    return float(np.sum(np.square(terms)))


def fit(generator: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]], arrays: dict[str, np.ndarray], windows: int,
        rate_hz: float = 30.0, seed: int = 0, pool: Executor | None = None,
        log: Callable[[str], None] = lambda _: None) -> tuple[NoiseProcess, list[dict]]:
    """Per mode, the (jump, rho) whose one-step frames move from frame to frame as that mode's training music does,
    then the level EMA whose glided frames move most like it, level included (`_glide`, on the same draws).

    `generator(rows)(noise)` -> dB latents of those rows of `arrays` (training tracks), the rows' part of the
    work done once for every noise drawn through them. Each mode
    is scored on `windows` 10-s windows of its own tracks, every grid point with the same draws;
    points whose spread over time falls below SPREAD_FLOOR are ruled out while any other is left.
    A mode without training tracks draws fresh noise. The grid points are scored on the `pool`'s
    threads (each alone, in grid order: the same scan on any count), each logged as it is scored
    ("noise fit i/N", a progress bar in `lume_v6_dagster.progress`). Returns the process and the scan
    (rows with `jump` and `rho`, then rows with `level_ema`).
    """
    modes, length = contract.modes_of(arrays["conditioning"]), int(FIT_SECONDS * rate_hz)
    rows = {m: np.flatnonzero(modes == m)[temporal.consecutive_windows(arrays["t"][modes == m], arrays["track"][modes == m], length, windows)]
            for m in np.unique(modes)}
    stacked = np.concatenate(list(rows.values()))  # (W, length) over every mode
    rng = np.random.default_rng(seed)
    e, u = rng.standard_normal((length, len(stacked), contract.NOISE_DIM)), rng.random((length, len(stacked)))
    generate = generator(stacked.ravel())

    def score(point: ModeNoise) -> list[dict]:
        noise = held(e, u, point).transpose(1, 0, 2).astype(np.float32)
        fake = generate(noise.reshape(-1, contract.NOISE_DIM)).reshape(*stacked.shape, -1)
        starts, found = np.cumsum([0, *(len(r) for r in rows.values())]), []
        for (m, r), a, b in zip(rows.items(), starts[:-1], starts[1:]):
            figures = temporal.compare(fake[a:b], arrays["latent"][r])
            found.append({"mode": contract.MODES[m], "jump": point.jump, "rho": point.rho, **figures, "mismatch": mismatch(figures)})
        return found

    grid = [ModeNoise(j, r) for j in JUMP_GRID for r in RHO_GRID if not (j == 0 and r == 1)]  # jump 0, rho 1 never moves
    scan = []
    for i, (point, point_rows) in enumerate(zip(grid, (pool.map if pool else map)(score, grid)), 1):
        scan += point_rows
        log(f"noise fit {i}/{len(grid)}: jump {point.jump:g}, rho {point.rho:g}")
    chosen = {m: _choose([r for r in scan if r["mode"] == m]) for m in (contract.MODES[i] for i in rows)}
    points = {m: ModeNoise(chosen[contract.MODES[m]]["jump"], chosen[contract.MODES[m]]["rho"]) for m in rows}
    glides = _glides(generator, arrays, rows, e, u, points)
    glide = {row["mode"]: row for row in glides if row["shipped"]}
    fitted = tuple(replace(points[i], level_ema=glide[m]["level_ema"], level_offset=glide[m]["level_offset"]) if i in points else FRESH
                   for i, m in enumerate(contract.MODES))
    return NoiseProcess(fitted, rate_hz=rate_hz), scan + glides


def _glides(generator, arrays: dict[str, np.ndarray], rows: dict, e: np.ndarray, u: np.ndarray, points: dict) -> list[dict]:
    """Per mode, its windows drawn through its chosen point (the scan's draws), then glided with each level EMA."""
    found, at = [], 0
    for m, r in rows.items():
        noise = held(e[:, at:at + len(r)], u[:, at:at + len(r)], points[m]).transpose(1, 0, 2).astype(np.float32)
        fake = generator(r.ravel())(noise.reshape(-1, contract.NOISE_DIM)).reshape(*r.shape, -1)
        found += _glide(contract.MODES[m], fake, arrays["latent"][r])
        at += len(r)
    return found


def _glide(mode: str, fake: np.ndarray, real: np.ndarray) -> list[dict]:
    """The level EMA of LEVEL_EMA_GRID whose glided frames move most like the real music: `mismatch` plus the
    squared log ratio of the level's change (a glide also slows each band; the lighter one on a tie), among those
    that hold the bands at most GLIDE_LAG1_SLACK longer than the music (the least held if none does), with the
    offset that keeps the frames' median level (`level_offset`, 0.01 dB). One row per candidate, the chosen one `shipped`."""
    found = []
    for a in LEVEL_EMA_GRID:
        glided = temporal.smooth_level(fake, a)
        figures = temporal.compare_frames(glided, real)  # none of them moves with a constant offset
        found.append({"mode": mode, "level_ema": a, "level_offset": round(temporal.median_level_shift(fake, glided), 2), **figures,
                      "mismatch": mismatch(figures) + np.log(figures["level_change_ratio"]) ** 2})
    held_over = [r["lag1"] - r["lag1_real"] for r in found]
    kept = [r for r, over in zip(found, held_over) if over <= GLIDE_LAG1_SLACK] or [found[int(np.argmin(held_over))]]
    best = min(kept, key=lambda r: r["mismatch"])
    return [{**r, "shipped": r is best} for r in found]


def _choose(candidates: list[dict]) -> dict:
    """The least mismatch among the candidates that keep the spread (the widest spread if none does)."""
    kept = [r for r in candidates if r["spread_ratio"] >= SPREAD_FLOOR] or [max(candidates, key=lambda r: r["spread_ratio"])]
    return min(kept, key=lambda r: r["mismatch"])
