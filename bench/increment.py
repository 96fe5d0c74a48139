"""Increment: wall time to take one new track from folder to pairs (sensor tick + the
ingest_track job), against a full rebuild of every track's pairs through the same job.
  python -m bench.increment                      # 10 tracks x 15 min (~2 min here)
"""

import os
import tempfile
import time
from pathlib import Path

import click
import dagster as dg

from bench.common import emit
from bench.sensor import tick

def _ingest(defs, instance, track: str) -> None:
    from lume_v6_dagster.runs import QUIET

    result = defs.resolve_job_def("ingest_track").execute_in_process(instance=instance, partition_key=track, run_config=QUIET)
    assert result.success, track


@click.command()
@click.option("--tracks", default=10, show_default=True, help="Tracks already ingested before the new one (>= 2).")
@click.option("--minutes", default=15.0, show_default=True)
def main(tracks: int, minutes: float) -> None:
    from lume_v6_dagster.definitions import build_defs
    from lume_v6_dagster.partitions import tracks as track_partitions
    from lume_v6_dagster.resources import ArtifactStore, CaptureStore
    from lume_v6_dagster.simulate import simulate

    with tempfile.TemporaryDirectory() as tmp:
        root, artifacts, staging = Path(tmp) / "captures", Path(tmp) / "artifacts", Path(tmp) / "staging"
        os.environ.update(LUME_CAPTURE_ROOT=str(root), LUME_ARTIFACT_ROOT=str(artifacts), LUME_SETTLE_SECONDS="0")
        *existing, new = simulate(tracks + 1, minutes, staging, seed=0)
        root.mkdir()
        for folder in existing:
            folder.rename(root / folder.name)
        defs = build_defs()
        resources = {"capture_store": CaptureStore(root=str(root), settle_seconds=0), "artifact_store": ArtifactStore(root=str(artifacts))}
        with dg.instance_for_test() as instance:
            first, _ = tick(instance, resources, None)
            warm, *rest = first.run_requests
            _ingest(defs, instance, warm.partition_key)  # imports and JIT caches: not part of either figure
            start = time.perf_counter()
            for req in rest:
                _ingest(defs, instance, req.partition_key)
            full = (time.perf_counter() - start) * (tracks + 1) / len(rest)  # every track, the new one included
            new.rename(root / new.name)
            start = time.perf_counter()
            result, _ = tick(instance, resources, first.cursor)
            (req,) = result.run_requests
            _ingest(defs, instance, req.partition_key)
            increment = time.perf_counter() - start
            assert len(instance.get_dynamic_partitions(track_partitions.name)) == tracks + 1
    emit("increment", tracks=tracks + 1, minutes_per_track=minutes, increment_s=increment, full_rebuild_s=full,
         ratio_increment_to_full=increment / full, ideal_ratio=1 / (tracks + 1))


if __name__ == "__main__":
    main()
