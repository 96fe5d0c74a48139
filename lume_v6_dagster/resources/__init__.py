"""Where captures and artifacts live. Production is an environment change, not a code change:
LUME_CAPTURE_ROOT and LUME_ARTIFACT_ROOT override the embedded defaults (SPEC section 8)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

DEFAULT_CAPTURE_ROOT = "./data/captures"
DEFAULT_ARTIFACT_ROOT = "./data/artifacts"


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

    def pairs_path(self, track_id: str) -> Path:
        return self.track_dir(track_id) / "pairs.npz"

    def raw_record_path(self, track_id: str) -> Path:
        return self.track_dir(track_id) / "raw_capture.json"

    def raw_record(self, track_id: str) -> dict | None:
        p = self.raw_record_path(track_id)
        return json.loads(p.read_text()) if p.exists() else None


def default_resources() -> dict:
    """Resources for the code location, read from the environment when it loads."""
    env = os.environ
    return {
        "capture_store": CaptureStore(
            root=env.get("LUME_CAPTURE_ROOT", DEFAULT_CAPTURE_ROOT),
            settle_seconds=float(env.get("LUME_SETTLE_SECONDS", 30)),
        ),
        "artifact_store": ArtifactStore(root=env.get("LUME_ARTIFACT_ROOT", DEFAULT_ARTIFACT_ROOT)),
    }
