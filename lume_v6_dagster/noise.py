"""The noise the app feeds FlowGenerator1Step, frame after frame: part of the model.

Fresh noise every frame makes one-step music flicker at the frame rate (on the demo profile,
frame-to-frame change 3.9x the real music's). An AR(1) process keeps every frame's noise
N(0, I), the input the generator was trained on, while consecutive frames share most of it.
Its correlation is fitted per model on training tracks (`fit`), saved in model.pt beside the
weights (one digest covers both) and stated in the bundle's manifest; previews and gates
draw from exactly it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from lume_v6_dagster import contract, temporal

RHO_GRID = (0.0, 0.5, 0.7, 0.8, 0.85, 0.88, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98)
FIT_SECONDS = 10.0  # windows of consecutive frames the correlation is fitted on


@dataclass(frozen=True)
class NoiseProcess:
    """z[0] ~ N(0, I); z[t] = rho * z[t-1] + sqrt(1 - rho^2) * e[t], e[t] ~ N(0, I), once per frame at `rate_hz`."""

    rho: float  # 0: fresh noise every frame (the V5 recipe, and every model before the process shipped)
    dim: int = contract.NOISE_DIM
    rate_hz: float = 30.0
    kind: str = "ar1"

    def sample(self, frames: int, seed: int) -> np.ndarray:
        """(frames, dim) float32: one sequence, as the app draws it from the start of a session."""
        e = np.random.default_rng(seed).standard_normal((frames, self.dim))
        return self._filter(e).astype(np.float32)

    def for_tracks(self, track: np.ndarray, seed: int) -> np.ndarray:
        """(rows, dim) float32 for rows grouped by track: one sequence per track, restarted at each new track."""
        e = np.random.default_rng(seed).standard_normal((len(track), self.dim))
        starts = np.flatnonzero(np.r_[True, np.diff(track) != 0, True])
        return np.concatenate([self._filter(e[a:b]) for a, b in zip(starts[:-1], starts[1:])]).astype(np.float32)

    def _filter(self, e: np.ndarray) -> np.ndarray:
        from scipy import signal  # 1 s to import: only the processes that draw noise pay it

        scaled = e.copy()
        scaled[1:] *= np.sqrt(1 - self.rho ** 2)  # stationary from the first frame: z[0] = e[0]
        return signal.lfilter([1.0], [1.0, -self.rho], scaled, axis=0)

    def as_dict(self) -> dict:
        return {**asdict(self), "marginal": "N(0, I)", "update": "z[t] = rho * z[t-1] + sqrt(1 - rho^2) * e[t], e[t] ~ N(0, I); z[0] ~ N(0, I)"}

    @classmethod
    def from_dict(cls, d: dict | None) -> "NoiseProcess":
        """The recorded process; none recorded means fresh noise every frame (models trained before it shipped)."""
        if not d:
            return cls(0.0)
        if d.get("kind") != "ar1":
            raise ValueError(f"unknown noise process {d.get('kind')!r}: this code draws 'ar1' only")
        return cls(float(d["rho"]), int(d["dim"]), float(d["rate_hz"]))


def mismatch(figures: dict[str, float]) -> float:
    """How differently generated frames move from the real music's: squared log ratios of the frame-to-frame
    change and of 1 - autocorrelation at each lag (a frame's flicker and a beat's structure)."""
    terms = [np.log(figures["change_ratio"])] + [np.log((1 - figures[f"lag{k}"]) / (1 - figures[f"lag{k}_real"])) for k in temporal.LAGS]
    return float(np.sum(np.square(terms)))


def fit(generate: Callable[[np.ndarray, np.ndarray], np.ndarray], arrays: dict[str, np.ndarray], windows: int,
        rate_hz: float = 30.0, seed: int = 0) -> tuple[NoiseProcess, list[dict]]:
    """The AR(1) correlation whose one-step frames change from frame to frame as the real training music does.

    `generate(rows, noise)` -> dB latents of those rows of `arrays` (training tracks). Each grid
    value is scored on the same `windows` 10-s windows with the same innovations; returns the best
    and the scan.
    """
    rows = temporal.consecutive_windows(arrays["t"], arrays["track"], int(FIT_SECONDS * rate_hz), windows)
    e = np.random.default_rng(seed).standard_normal((len(rows), rows.shape[1], contract.NOISE_DIM))
    real, scan = arrays["latent"][rows], []
    for rho in RHO_GRID:
        process = NoiseProcess(rho, rate_hz=rate_hz)
        noise = np.stack([process._filter(w) for w in e]).astype(np.float32)
        fake = generate(rows.ravel(), noise.reshape(-1, contract.NOISE_DIM)).reshape(real.shape)
        figures = temporal.compare(fake, real)
        scan.append({"rho": rho, **figures, "mismatch": mismatch(figures)})
    best = min(scan, key=lambda row: row["mismatch"])
    return NoiseProcess(best["rho"], rate_hz=rate_hz), scan
