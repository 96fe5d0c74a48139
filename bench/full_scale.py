"""Full scale: 30 tracks x 15 min through the whole chain with the full profile, wall time per stage.

It runs the demo path (real Dagster jobs on a fresh instance under --root) and reads each
stage's time back from the instance. Goal: the whole chain within 60 minutes on 2 cores.
  make bench ARGS="full_scale"                            # about 33 min here
  . scripts/env.sh && python -m bench.full_scale --root DIR  # --root keeps the outputs
(scripts/env.sh preloads OpenBLAS for MLX: without it san_v6 alone takes ~12 min here.)
"""

import os
import tempfile
import time
from pathlib import Path

import click
import dagster as dg

from bench.common import emit, peak_rss_mb


def _stage_seconds(instance: dg.DagsterInstance) -> dict[str, float]:
    """Ingest runs summed; each step of the training run on its own."""
    ingest = [instance.get_run_stats(r.run_id) for r in instance.get_runs(dg.RunsFilter(job_name="ingest_track"))]
    stages = {"ingest_all_tracks": sum(s.end_time - s.start_time for s in ingest)}
    (train,) = instance.get_runs(dg.RunsFilter(job_name="train"), limit=1)
    for step in instance.get_run_step_stats(train.run_id):
        stages[step.step_key] = step.end_time - step.start_time
    return stages


@click.command()
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), help="Empty folder for captures, artifacts, instance [a temporary one].")
@click.option("--tracks", default=30, show_default=True)
@click.option("--minutes", default=15.0, show_default=True)
@click.option("--profile", default="full", show_default=True)
def main(root: Path | None, tracks: int, minutes: float, profile: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run((root or Path(tmp)).resolve(), tracks, minutes, profile)


def _run(root: Path, tracks: int, minutes: float, profile: str) -> None:
    for name, sub in (("DAGSTER_HOME", "dagster_home"), ("LUME_CAPTURE_ROOT", "captures"), ("LUME_ARTIFACT_ROOT", "artifacts")):
        os.environ[name] = str(root / sub)
    from lume_v6_dagster import demo
    from lume_v6_dagster.simulate import simulate

    start = time.perf_counter()
    simulate(tracks, minutes, root / "captures", seed=0)
    simulated = time.perf_counter() - start
    demo.run(tracks, minutes, profile, seed=0, echo=lambda line: click.echo(line, err=True))
    total = time.perf_counter() - start
    stages = {"simulate": simulated, **_stage_seconds(dg.DagsterInstance.get())}
    emit("full_scale", tracks=tracks, minutes_per_track=minutes, profile=profile, total_minutes=total / 60,
         goal_minutes=60, within_goal=total <= 3600, stage_seconds={k: round(v, 1) for k, v in stages.items()},
         peak_rss_mb=peak_rss_mb())


if __name__ == "__main__":
    main()
