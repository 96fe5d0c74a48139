"""Where captures and artifacts live. Production is an environment change, not a code change:
LUME_CAPTURE_ROOT and LUME_ARTIFACT_ROOT override the embedded defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from lume_v6_dagster import capacity, deployment

DEFAULT_CAPTURE_ROOT, DEFAULT_ARTIFACT_ROOT = deployment.ROOTS.values()


class CaptureStore(dg.ConfigurableResource):
    """The capture disk: read-only to the pipeline."""

    root: str = DEFAULT_CAPTURE_ROOT
    settle_seconds: float = 30.0
    stale_hours: float = 24.0

    def folder(self, track_id: str) -> Path:
        return Path(self.root) / track_id


class ArtifactStore(dg.ConfigurableResource):
    """Everything the pipeline writes: per-track records, pairs, models, bundles, reports."""

    root: str = DEFAULT_ARTIFACT_ROOT

    def track_dir(self, track_id: str) -> Path:
        return Path(self.root) / "tracks" / track_id

    def pairs_versions(self, track_id: str) -> Path:
        """Every pairs file the track has had, each named by its digest and never rewritten."""
        return self.track_dir(track_id) / "pairs"

    def pairs_pointer(self, track_id: str) -> Path:
        return self.track_dir(track_id) / "pairs.json"

    def pairs_path(self, track_id: str) -> Path | None:
        """The track's current pairs file (named in pairs.json), or None before its first ingest."""
        pointer = self.pairs_pointer(track_id)
        return self.track_dir(track_id) / json.loads(pointer.read_text())["file"] if pointer.exists() else None

    def raw_record_path(self, track_id: str) -> Path:
        return self.track_dir(track_id) / "raw_capture.json"

    def training_dir(self, name: str) -> Path:
        return Path(self.root) / "training" / name

    def raw_record(self, track_id: str) -> dict | None:
        p = self.raw_record_path(track_id)
        return json.loads(p.read_text()) if p.exists() else None


DETERMINISM = {
    "cpu": "bitwise: a seeded run gives identical weights (tested)",
    "cuda": "deterministic kernels (CUBLAS_WORKSPACE_CONFIG=:4096:8): identical weights on the same GPU and driver",
    "mps": "best effort: some MPS kernels are not deterministic, so weights may differ in the last bits",
}


class TrainingHost(dg.ConfigurableResource):
    """The machine that trains ("mac5" in production): device, threads, seed and profile."""

    name: str = "mac5"
    device: str = "auto"  # auto | cpu | mps | cuda
    # Torch threads per op; 0 = all cores. Each count gives other weights (float sums in another
    # order), so it is recorded with the model; with MKL a second thread gives a step 1.5x on 2
    # cores, but only where nothing else trains: one per model, the models side by side, is the default.
    threads: int = 1
    # Each encoder + flow step computes its no-gradient targets (MeanFlow's JVP, the distillation
    # teacher) on a second thread, beside its gradients: the same weights bit for bit, a MeanFlow
    # step 0.72x the time where a core is free (bench/README.md); CPU only. Off: a step on one core.
    overlap: bool = True
    parallel: int = 0  # training steps at once; 0 = from the device and cores (capacity.training_slots)
    seed: int = 0
    profile: str = "demo"  # tiny | demo | full (lume_v6_dagster.training.profiles)

    def torch_device(self) -> str:
        import torch

        if self.device != "auto":
            return self.device
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"

    def slots(self) -> int:
        """How many of the training steps this host runs side by side (the training pool's size)."""
        return capacity.training_slots(self.parallel, self.threads, self.torch_device(), capacity.cores())

    def setup(self) -> str:
        """Threads and deterministic kernels valid for the device; returns the guarantee that holds.

        CUDA refuses deterministic cuBLAS without a fixed workspace (set before its first
        call), and some MPS ops have no deterministic kernel: there it warns, not raises.
        """
        import torch

        device = self.torch_device()
        if self.threads:
            torch.set_num_threads(self.threads)
        if device == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=device == "mps")
        return DETERMINISM[device]


def default_resources() -> dict:
    """Resources for the code location, read from the environment when it loads."""
    env = os.environ
    capture_root, artifact_root = deployment.roots()
    return {
        "capture_store": CaptureStore(
            root=capture_root,
            settle_seconds=float(env.get("LUME_SETTLE_SECONDS", 30)),
        ),
        "artifact_store": ArtifactStore(root=artifact_root),
        "training_host": TrainingHost(
            name=env.get("LUME_TRAINING_HOST", "mac5"),
            device=env.get("LUME_TRAINING_DEVICE", "auto"),
            threads=int(env.get("LUME_TRAINING_THREADS", 1)),
            overlap=capacity.overlap(),
            parallel=int(env.get("LUME_TRAINING_PARALLEL", 0)),
            seed=int(env.get("LUME_TRAINING_SEED", 0)),
            profile=env.get("LUME_TRAINING_PROFILE", "demo"),
        ),
    }
