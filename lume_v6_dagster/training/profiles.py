"""Training profiles: epochs and batch sizes chosen by configuration, never by editing code."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    flow_epochs: int
    flow_batch: int
    flow_lr: float
    flow_steps_per_epoch: int  # cap, so an epoch has a bounded cost on any dataset size
    san_epochs: int
    san_batch: int
    san_lr: float
    eval_samples: int  # validation pairs used for Frechet distance
    preview_seconds: float  # each listening clip: a listener needs 15-30 s; tiny's only show the path works
    # What the acceptance report reads: validation frames of gates 5 and 6 (3,000 hold gate 6's ratio
    # within 0.05 between draws, docs/gates.md) and 10-s windows per validation track over time. Tiny's
    # show the path works at a fifth of the cost (gate 6 alone took 37 s of a tiny report's 57).
    gate_frames: int = 3_000
    windows_per_track: int = 4
    # 10-s training windows per mode each noise process is scored on (lume_v6_dagster/noise.py). A generator's bands
    # follow a few noise directions, so a window's figures are noisy: on 8 the choice changed with the fit's own draws
    # and left the simulator's lag-1 0.06 above the music's on every seed; 32 take it to 0.05 or less (docs/one_step.md).
    noise_fit_windows: int = 32


PROFILES = {
    "tiny": Profile(2, 128, 1e-3, 20, 2, 256, 2e-3, 256, 2.0, gate_frames=600, windows_per_track=1, noise_fit_windows=1),
    "demo": Profile(12, 256, 1e-3, 120, 12, 256, 2e-3, 8192, 20.0),
    # Sized so 30 tracks x 15 min go through the whole chain within 35 min on 2 cores (32.5 min,
    # bench/full_scale.py): 4.9 M flow samples (320 steps, not 400: the distillation term costs
    # ~30% per MeanFlow step, docs/one_step.md), 8 SAN passes over ~1 M training frames.
    "full": Profile(30, 512, 5e-4, 320, 8, 512, 1e-3, 16384, 20.0),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown training profile {name!r} (one of {', '.join(PROFILES)})")
    return PROFILES[name]
