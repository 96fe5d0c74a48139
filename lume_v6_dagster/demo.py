"""The demo: simulated captures through the real Dagster jobs on a persistent instance.

Runs go into the instance under DAGSTER_HOME, so `dagster dev` shows them afterwards, and
a second demo reuses every partition already materialized instead of starting over.
"""

import json
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import dagster as dg
from tqdm import tqdm

from lume_v6_dagster import capacity, deployment, devset, runs, worker
from lume_v6_dagster.acceptance.gates import Gate, table
from lume_v6_dagster.atomic_files import write_json
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import DEFAULT_ARTIFACT_ROOT, DEFAULT_CAPTURE_ROOT, default_resources
from lume_v6_dagster.schedules import training_decision
from lume_v6_dagster.services import DEFAULT_DIR as DEFAULT_SERVICES
from lume_v6_dagster.services import Services
from lume_v6_dagster.simulate import plan_tracks, simulate

PROFILE_MINUTES = {"full": 15.0, "demo": 3.0, "tiny": 0.5}
TWO_HOST_HOME, TWO_HOST_ARTIFACTS = "./.dagster-two-host", "./data/artifacts-two-host"  # beside the embedded demo's


def run(n_tracks: int, minutes: float | None, profile: str, seed: int, echo=print, through_executor: bool = False,
        serial: bool = False, track_ids: list[str] | None = None) -> str:
    """Simulate (if absent), ingest every track, train and release; returns the report's path.

    `track_ids`: the capture folders already under the capture root (the development set) instead.

    Tracks are ingested side by side and the models train side by side, as far as this host's
    pools allow (`serial`: one track, then one step at a time, on one thread, in this process). Two hosts
    (`through_executor`): every step goes through the deployment's executor, to the Celery
    workers, which size the pools of their hosts.
    """
    capture_root = Path(os.environ.setdefault("LUME_CAPTURE_ROOT", DEFAULT_CAPTURE_ROOT))
    os.environ.setdefault("LUME_ARTIFACT_ROOT", DEFAULT_ARTIFACT_ROOT)
    os.environ["LUME_TRAINING_PROFILE"] = profile
    if serial:  # one thread per step as well (the same weights)
        os.environ["LUME_TRAINING_OVERLAP"] = "0"
    deployment.prepare_instance_home(Path(os.environ["DAGSTER_HOME"]))

    ids = track_ids or _simulated(n_tracks, minutes or PROFILE_MINUTES[profile], seed, capture_root)
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions(tracks.name, ids)
    steps = None  # two hosts: each worker sizes the pool of its own host
    if not through_executor:
        slots = capacity.size_host_pools(instance, default_resources()["training_host"].slots(), serial)
        steps = None if serial else max(capacity.cores(), slots[capacity.TRAINING_POOL])
        echo("serial: one track, then one step at a time, on one thread, in this process" if serial else
             f"side by side on this host: {slots[capacity.INGEST_POOL]} tracks, {slots[capacity.TRAINING_POOL]} training steps")
    done = instance.get_materialized_partitions(dg.AssetKey("track_pairs"))
    ingested = ingest([t for t in ids if t not in done], instance, 1 if serial else capacity.ingest_slots(), through_executor)
    failed = [track for track, r in ingested.items() if r is None or r.status != dg.DagsterRunStatus.SUCCESS]
    echo(f"tracks: {len(ids)} ({len(done & set(ids))} reused, {len(failed)} failed)")
    for track in failed:
        echo(f"  failed: {track} (see the run in the Dagster UI)")
    ran = [r for r in ingested.values() if r is not None]
    decision = training_decision(instance)
    if isinstance(decision, dg.SkipReason):
        echo(f"training reused: {decision.skip_message}")
        if _newer(instance, "dataset_split", "acceptance_report"):
            ran.append(_execute("release", instance, echo, {}, through_executor=through_executor))
    elif decision.asset_selection:  # the same models, judged again by this judging code
        ran.append(_execute("release", instance, echo, decision.tags, f"release: {decision.tags['lume/trigger']} ...",
                            through_executor=through_executor))
    else:  # a process per step unless serial: the models train side by side
        ran.append(_execute("train", instance, echo, decision.tags, f"training + release ({profile} profile) ...",
                            through_executor or not serial, steps))
    if through_executor:
        echo(where_table(instance, [r.run_id for r in ran]))
    return _summary(instance, Path(os.environ["LUME_ARTIFACT_ROOT"]), echo)


def _simulated(n_tracks: int, minutes: float, seed: int, capture_root: Path) -> list[str]:
    """The simulated tracks' ids, simulating them first where a folder is absent."""
    plans = plan_tracks(n_tracks, minutes, seed)
    if any(not (capture_root / p.track_id).exists() for p in plans):
        simulate(n_tracks, minutes, capture_root, seed=seed,
                 progress=lambda it, total: tqdm(it, total=total, desc="simulate captures", unit="track"))
    return [p.track_id for p in plans]


def run_devset(root: Path, per_mode: int, seconds: float, profile: str, seed: int, echo=print, build_only: bool = False) -> str:
    """The development set (real music, real motion): build it under `root` (if absent), then run the whole
    chain on it on an instance and artifact root of its own; returns the report's path (or the captures')."""
    root = Path(root).resolve()
    captures, artifacts = root / "captures", root / "artifacts"
    planned = devset.plan(per_mode, seconds, seed)
    if any(not (captures / t.track_id).exists() for t in planned):
        devset.build(captures, per_mode, seconds, seed, cache=root / "cache",
                     progress=lambda it, total: tqdm(it, total=total, desc="build development set", unit="track"))
    if build_only:
        return str(captures)
    os.environ.update(LUME_CAPTURE_ROOT=str(captures), LUME_ARTIFACT_ROOT=str(artifacts), DAGSTER_HOME=str(root / ".dagster"))
    artifacts.mkdir(parents=True, exist_ok=True)
    if not (artifacts / "thresholds.json").exists():  # the set is small on purpose: coverage scaled to it, all else the defaults
        write_json(artifacts / "thresholds.json", devset.coverage_thresholds(per_mode, seconds))
    return run(len(planned), None, profile, seed, echo, track_ids=[t.track_id for t in planned])


def ingest(track_ids: list[str], instance: dg.DagsterInstance, workers: int, through_executor: bool) -> dict[str, dg.DagsterRun | None]:
    """One `ingest_track` run per track, `workers` at once, each in a process of its own; one bad track stops none.

    None for a track whose process died before its run could report.
    """
    bar = tqdm(total=len(track_ids), desc="ingest tracks", unit="track")
    if workers <= 1 or len(track_ids) <= 1:
        found = {}
        for track in track_ids:
            found[track] = _ingest_one(track, through_executor, instance)
            bar.update()
        bar.close()
        return found
    ids = {}
    with ProcessPoolExecutor(max_workers=min(workers, len(track_ids)), mp_context=runs.process_context()) as pool:
        futures = {pool.submit(_ingest_id, track, through_executor): track for track in track_ids}
        for future in as_completed(futures):
            if error := future.exception():
                tqdm.write(f"{futures[future]}: its ingest process failed before its run reported: {error!r}")
            ids[futures[future]] = None if error else future.result()
            bar.update()
    bar.close()
    return {track: ids[track] and instance.get_run_by_id(ids[track]) for track in track_ids}


def _ingest_one(track: str, through_executor: bool, instance: dg.DagsterInstance) -> dg.DagsterRun:
    return runs.execute("ingest_track", instance, tags={"dagster/partition": track}, through_executor=through_executor, shown=False)


def _ingest_id(track: str, through_executor: bool) -> str:
    """In a worker process: ingest one track on the instance under DAGSTER_HOME; returns the run's id."""
    with dg.DagsterInstance.get() as instance:
        return _ingest_one(track, through_executor, instance).run_id


def run_two_host(n_tracks: int, minutes: float | None, profile: str, seed: int, echo=print) -> str:
    """The production topology on one machine: PostgreSQL and Redis (./.services), a mac4 worker on
    the default queue and a mac5 worker on the training queue; stops all it started."""
    os.environ["LUME_DEPLOYMENT"] = "two-host"
    os.environ["LUME_TRAINING_PROFILE"] = profile  # the workers read it when they start
    for key, default in (("LUME_CAPTURE_ROOT", DEFAULT_CAPTURE_ROOT), ("LUME_ARTIFACT_ROOT", TWO_HOST_ARTIFACTS)):
        os.environ[key] = str(Path(os.environ.get(key, default)).resolve())
        Path(os.environ[key]).mkdir(parents=True, exist_ok=True)
    home = Path(os.environ["DAGSTER_HOME"])
    if (home / "dagster.yaml").exists() and "postgres" not in (home / "dagster.yaml").read_text():
        os.environ["DAGSTER_HOME"] = str(Path(TWO_HOST_HOME).resolve())  # the embedded demo's SQLite home stays as it is
    services, workers = Services(root=Path(DEFAULT_SERVICES).resolve()), []
    try:
        os.environ.update(services.start())
        echo(f"services: {', '.join(f'{k} {v}' for k, v in services.status().items())}")
        for name, queue in (("mac4", deployment.DEFAULT_QUEUE), ("mac5", deployment.TRAINING_QUEUE)):
            workers.append(worker.launch(name, queue, dict(os.environ), services.root / f"{name}.log"))
            echo(f"worker {name} ready on queue {queue} (log {services.root / f'{name}.log'})")
        return run(n_tracks, minutes, profile, seed, echo, through_executor=True)
    finally:
        for proc in workers:
            worker.stop(proc)
        echo(f"stopped: {len(workers)} workers, {', '.join(services.stop())}")


def where_table(instance: dg.DagsterInstance, run_ids: list[str]) -> str:
    """Markdown table: each asset (step) -> the worker(s) that materialized it, read from the instance."""
    seen: dict[str, dict[str, int]] = {}
    for run_id in run_ids:
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            m = entry.asset_materialization
            counts = seen.setdefault(m.asset_key.to_user_string(), {})
            name = m.metadata["worker"].value if "worker" in m.metadata else "?"
            counts[name] = counts.get(name, 0) + 1
    rows = [f"| {step} | {', '.join(f'{w} ({n})' for w, n in workers.items())} |" for step, workers in seen.items()]
    return "| step | ran on (materializations) |\n|---|---|\n" + "\n".join(rows)


def _newer(instance: dg.DagsterInstance, upstream: str, downstream: str) -> bool:
    """Is `downstream` missing or older than `upstream`?"""
    up = instance.get_latest_materialization_event(dg.AssetKey(upstream))
    down = instance.get_latest_materialization_event(dg.AssetKey(downstream))
    return down is None or (up is not None and up.timestamp > down.timestamp)


def _execute(job: str, instance, echo, tags: dict, message: str | None = None, through_executor: bool = False,
             max_concurrent: int | None = None) -> dg.DagsterRun:
    echo(message or f"{job} ...")
    run = runs.execute(job, instance, tags, through_executor=through_executor, max_concurrent=max_concurrent)
    if run.status != dg.DagsterRunStatus.SUCCESS:
        raise SystemExit(f"{job} failed: see run {run.run_id} in the Dagster UI")
    return run


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
    echo(f"champion: {verdict['champion']['state']}: {verdict['champion']['reason']}")
    echo(f"status: {verdict['status']} (useV6Models: {str(verdict['useV6Models']).lower()})")
    return str(page)


SUMMARY = ("val_loss", "fd_1step", "fd_16step", "fd_ratio", "params", "encoder_params", "flow_params")
