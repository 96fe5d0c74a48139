"""Two hosts on one machine: what Celery dispatch costs per step, and what a second worker gives.

Starts real services and workers as `lume-v6 demo --deploy two-host` does (PostgreSQL, Redis,
`lume-v6 worker` processes), then measures, on the same simulated tracks:
- dispatch: the tiny chain (ingest of every track, then `train`) in process and through Celery;
  overhead per step = (Celery wall time - in-process wall time) / steps;
- throughput: ingest of every track (runs launched in parallel) with 1 worker on the default
  queue, then with 2.
  python -m bench.two_host [--tracks 30 --minutes 0.5]
"""

import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click

from bench.common import emit


def _ingest(track: str) -> str:
    """One ingest run through the executor, in a process of its own (the executor loop blocks)."""
    import dagster as dg

    from lume_v6_dagster import runs

    with dg.DagsterInstance.get() as instance:
        return runs.execute("ingest_track", instance, tags={"dagster/partition": track}, through_executor=True).status.value


def _chain(instance, ids: list[str], through_executor: bool, train: bool) -> tuple[float, int]:
    """(seconds, steps) of ingesting every track and (if `train`) training, one way."""
    import dagster as dg

    from lume_v6_dagster import runs

    start, steps = time.perf_counter(), 0
    for job, tags in [*(("ingest_track", {"dagster/partition": t}) for t in ids), *([("train", {})] if train else [])]:
        run = runs.execute(job, instance, tags=tags, through_executor=through_executor)
        assert run.status == dg.DagsterRunStatus.SUCCESS, (job, tags, run.run_id)
        steps += len(instance.get_run_step_stats(run.run_id))
    return time.perf_counter() - start, steps


def _ingest_all(ids: list[str]) -> float:
    start = time.perf_counter()
    with ProcessPoolExecutor(4) as pool:
        statuses = list(pool.map(_ingest, ids))
    assert set(statuses) == {"SUCCESS"}, statuses
    return time.perf_counter() - start


@click.command()
@click.option("--tracks", default=30, show_default=True)
@click.option("--minutes", default=0.5, show_default=True)
@click.option("--chain-tracks", default=10, show_default=True, help="Tracks in the dispatch comparison (the tiny chain; two per mode to train).")
@click.option("--train/--no-train", default=True, show_default=True, help="Train and release in the dispatch comparison, or ingest only.")
def main(tracks: int, minutes: float, chain_tracks: int, train: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="lume-bench-") as tmp:
        Path(tmp).chmod(0o755)  # PostgreSQL runs as its own user (as root: `postgres`) and must enter it
        _run(Path(tmp), tracks, minutes, chain_tracks, train)


def _run(root: Path, tracks: int, minutes: float, chain_tracks: int, train: bool) -> None:
    import dagster as dg

    from lume_v6_dagster import deployment, worker
    from lume_v6_dagster.partitions import tracks as track_partitions
    from lume_v6_dagster.services import Services
    from lume_v6_dagster.simulate import plan_tracks, simulate

    services = Services(root=root / "services", pg_port=_free_port(), redis_port=_free_port())
    os.environ.update({**services.start(), "DAGSTER_HOME": str(root / "home"), "LUME_CAPTURE_ROOT": str(root / "captures"),
                       "LUME_ARTIFACT_ROOT": str(root / "artifacts"), "LUME_TRAINING_PROFILE": "tiny", "LUME_TRAINING_THREADS": "1"})
    workers = []
    try:
        deployment.prepare_instance_home(root / "home")
        (root / "artifacts").mkdir()
        simulate(tracks, minutes, root / "captures", seed=0)
        ids = [p.track_id for p in plan_tracks(tracks, minutes, 0)]
        launch = lambda name, queue: workers.append(worker.launch(name, queue, dict(os.environ), root / f"{name}.log"))  # noqa: E731
        if train:  # no training queue without training: a worker and its pool import the code for nothing
            launch("mac5", deployment.TRAINING_QUEUE)
        launch("mac4", deployment.DEFAULT_QUEUE)
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(track_partitions.name, ids)
            chain = ids[:chain_tracks]
            celery_s, steps = _chain(instance, chain, True, train)
            os.environ["LUME_TRAINING_SEED"] = "1"  # new run folders: in process trains from scratch too, not from checkpoints
            inproc_s, _ = _chain(instance, chain, False, train)
        one = _ingest_all(ids)
        launch("mac4b", deployment.DEFAULT_QUEUE)
        two = _ingest_all(ids)
    finally:
        for proc in workers:
            worker.stop(proc)
        services.stop()
    emit("two_host", chain_tracks=chain_tracks, chain_trains=train, chain_steps=steps, chain_in_process_s=inproc_s, chain_celery_s=celery_s,
         dispatch_overhead_s_per_step=(celery_s - inproc_s) / steps, ingest_tracks=tracks, minutes_per_track=minutes,
         ingest_tracks_per_min_1_worker=tracks / one * 60, ingest_tracks_per_min_2_workers=tracks / two * 60, speedup_2_workers=one / two)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
