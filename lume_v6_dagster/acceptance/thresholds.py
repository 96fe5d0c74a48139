"""Every acceptance threshold, in one place, with defaults; a JSON file may override any."""

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass(frozen=True)
class Thresholds:
    min_tracks: int = 30
    min_cell_minutes: float = 1.0
    flow_val_loss_max: float = 1.0  # flow-matching error, normalised latent units (no skill ~ 2)
    one_step_fd_ratio_max: float = 1.10  # the shipped 1-step sample's FD at most this times the 16-step sampler's
    # Gate 3 over time: 10-s windows of shipped one-step frames against the real music of the same windows. Fresh
    # noise every frame measured 3.9 x the real change and lag-1 0.08 against 0.79 (demo profile); the fitted AR(1) 1.3 x and 0.83.
    change_ratio_max: float = 1.5  # frame-to-frame change at most this times the real music's (median over bands)
    lag1_gap_max: float = 0.10  # lag-1 autocorrelation within this of the real music's
    spread_ratio_min: float = 0.8  # spread over time at least this times the real music's: no collapse
    # Per-frame FD of those frames at most this times real against real (alternate windows): an absolute bound, which
    # the 1-step / 16-step ratio is not. Demo profile: V6 4.40, V5 recipe 13.86, floor 4.26.
    frame_fd_floor_ratio_max: float = 2.0
    san_val_loss_max: float = 0.6  # MSE, normalised controls (predicting the mean = 1)
    san_params: int = 135_000
    san_params_tolerance: float = 0.10
    mode_accuracy_min: float = 0.6  # chance = 0.2
    # The closest two generated modes at least this times the real validation music's closest two (normalised FD;
    # demo profile: 11.3 against 11.2; a mode-blind generator ~0).
    mode_distance_ratio_min: float = 0.5
    sensitivity_ratio_min: float = 0.25  # dims 64-127 vs dims 0-63
    parity_tolerance: float = 2e-2
    bundle_mb_max: float = 50.0
    latency_ms_max: float = 5.0  # encoder + flow + SAN, batch 1, CPU
    # Tonight's V6 against the champion (the V6 of the last released bundle), same held-out frames and noise.
    champion_loss_regression_max: float = 0.05  # validation loss at most 5% above the champion's
    champion_fd_regression_max: float = 0.15  # per-frame and sequence FD at most 15% above (full profile: 90% interval is about +-6%)
    champion_mode_accuracy_drop_max: float = 0.03  # mode recovery at most 3 points below (a reseed moves it by about 1)

    @classmethod
    def load(cls, path: Path | None) -> "Thresholds":
        if path is None or not Path(path).exists():
            return cls()
        overrides = json.loads(Path(path).read_text())
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown threshold(s) {sorted(unknown)}")
        return cls(**overrides)

    def as_dict(self) -> dict:
        return asdict(self)

    def overrides(self) -> dict[str, dict]:
        """Every threshold that differs from its default: name -> {value, default}."""
        default = Thresholds()
        return {f.name: {"value": getattr(self, f.name), "default": getattr(default, f.name)}
                for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}
