"""The demo: simulated captures through the real Dagster jobs on a persistent instance.

Runs go into the instance under DAGSTER_HOME, so `dagster dev` shows them afterwards, and
a second demo reuses every partition already materialized instead of starting over.
"""

import json
import os
from pathlib import Path

import dagster as dg
from tqdm import tqdm

from lume_v6_dagster import runs
from lume_v6_dagster.acceptance.gates import Gate, table
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import DEFAULT_ARTIFACT_ROOT, DEFAULT_CAPTURE_ROOT
from lume_v6_dagster.schedules import training_decision
from lume_v6_dagster.simulate import plan_tracks, simulate

PROFILE_MINUTES = {"full": 15.0, "demo": 3.0, "tiny": 0.5}


def run(n_tracks: int, minutes: float | None, profile: str, seed: int, echo=print) -> str:
    capture_root = Path(os.environ.setdefault("LUME_CAPTURE_ROOT", DEFAULT_CAPTURE_ROOT))
    os.environ.setdefault("LUME_ARTIFACT_ROOT", DEFAULT_ARTIFACT_ROOT)
    os.environ["LUME_TRAINING_PROFILE"] = profile
    _ensure_instance_yaml(Path(os.environ["DAGSTER_HOME"]))

    plans = plan_tracks(n_tracks, minutes or PROFILE_MINUTES[profile], seed)
    missing = [p for p in plans if not (capture_root / p.track_id).exists()]
    if missing:
        simulate(n_tracks, minutes or PROFILE_MINUTES[profile], capture_root, seed=seed,
                 progress=lambda it, total: tqdm(it, total=total, desc="simulate captures", unit="track"))
    ids = [p.track_id for p in plans]
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions(tracks.name, ids)
    done = instance.get_materialized_partitions(dg.AssetKey("track_pairs"))
    failed = []
    for track in tqdm([t for t in ids if t not in done], desc="ingest tracks", unit="track"):
        if runs.execute("ingest_track", instance, tags={"dagster/partition": track}).status != dg.DagsterRunStatus.SUCCESS:
            failed.append(track)
    echo(f"tracks: {len(ids)} ({len(done & set(ids))} reused, {len(failed)} failed)")
    for track in failed:
        echo(f"  failed: {track} (see the run in the Dagster UI)")
    decision = training_decision(instance)
    if isinstance(decision, dg.SkipReason):
        echo(f"training reused: {decision.skip_message}")
        if _newer(instance, "dataset_split", "acceptance_report"):
            _execute("release", instance, echo, {})
    else:
        _execute("train", instance, echo, decision.tags, f"training + release ({profile} profile) ...")
    return _summary(instance, Path(os.environ["LUME_ARTIFACT_ROOT"]), echo)


def _ensure_instance_yaml(home: Path) -> None:
    """dagster.yaml is read from DAGSTER_HOME only: copy the project's there."""
    home.mkdir(parents=True, exist_ok=True)
    src = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if src.exists() and not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(src.read_text())


def _newer(instance: dg.DagsterInstance, upstream: str, downstream: str) -> bool:
    """Is `downstream` missing or older than `upstream`?"""
    up = instance.get_latest_materialization_event(dg.AssetKey(upstream))
    down = instance.get_latest_materialization_event(dg.AssetKey(downstream))
    return down is None or (up is not None and up.timestamp > down.timestamp)


def _execute(job: str, instance, echo, tags: dict, message: str | None = None) -> None:
    echo(message or f"{job} ...")
    run = runs.execute(job, instance, tags)
    if run.status != dg.DagsterRunStatus.SUCCESS:
        raise SystemExit(f"{job} failed: see run {run.run_id} in the Dagster UI")


def _summary(instance: dg.DagsterInstance, artifacts: Path, echo) -> str:
    """Print model metrics and the gate table of the latest report; return the report's path."""
    for metrics in sorted((artifacts / "training").glob("*/*/metrics.json")):
        m = json.loads(metrics.read_text())["metrics"]
        echo(f"{metrics.parent.parent.name}: " + ", ".join(f"{k}={m[k]:.4g}" for k in SUMMARY if k in m))
    latest = runs.latest_report(instance)
    if latest is None:
        raise SystemExit("no acceptance report was materialized")
    page, verdict = latest
    echo(table([Gate(**x) for x in verdict["gates"]]))
    echo(f"status: {verdict['status']} (useV6Models: {str(verdict['useV6Models']).lower()})")
    return str(page)


SUMMARY = ("val_loss", "fd_1step", "fd_16step", "fd_ratio", "params", "encoder_params", "flow_params")
