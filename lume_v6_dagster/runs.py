"""Running the project's jobs from the command line, on the instance under DAGSTER_HOME.

In process (the embedded demo, the sign-off), or through the deployment's executor
(`execute_job` on a reconstructable job: in two-host, steps go to the Celery workers), with
training progress read from the run's event log either way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from lume_v6_dagster import progress
from lume_v6_dagster.definitions import build_defs

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the runs' full logs stay in the UI


def resolved_job(name: str) -> dg.JobDefinition:
    """A job of the code location, resolved with today's environment (workers reconstruct it by this name)."""
    return build_defs().resolve_job_def(name)


def reconstructable(name: str):
    """Job `name` as its steps' processes and workers rebuild it, resolved here with today's environment.

    Dagster keeps the last job it reconstructed in a process, keyed on the code pointer alone, so
    a job resolved under an earlier run's settings (another deployment's executor, other roots for
    the resources of the steps that run in this process) would be handed back: resolve it anew.
    """
    job = dg.build_reconstructable_job(__name__, "resolved_job", reconstructable_args=(name,))
    job.get_definition.cache_clear()
    job.get_repository_definition.cache_clear()
    return job


def execute(name: str, instance: dg.DagsterInstance, tags: dict | None = None, through_executor: bool = False,
            ops: dict | None = None, max_concurrent: int | None = None, shown: bool = True, resources: dict | None = None) -> dg.DagsterRun:
    """Run job `name` to its end and return the finished run; training progress is shown as it happens.

    In process by default. `through_executor` goes through the job's executor instead: Celery in
    two-host, else a process per step, `max_concurrent` of them at once (pools permitting), or for
    a track's ingest this process.
    """
    tags = dict(tags or {})
    run_config = {**QUIET, "ops": ops} if ops else dict(QUIET)
    if resources:
        run_config["resources"] = resources  # e.g. the training host's profile and seed, which travel with the run
    follow = progress.shown if shown else (lambda *_: contextlib.nullcontext())
    if through_executor:
        job = reconstructable(name)
        if job.get_definition().executor_def.name == "multiprocess":  # one host: this process's fork server (`_server_fits`)
            limit = {"max_concurrent": max_concurrent} if max_concurrent else {}
            run_config["execution"] = {"config": {**limit, "start_method": _start_method()}}
        started = time.time()
        with follow(instance, lambda: _newest_run(instance, name, started)):
            result = dg.execute_job(job, instance, run_config=run_config, tags=tags)
        return instance.get_run_by_id(result.run_id)
    run_id, partition = str(uuid.uuid4()), tags.pop("dagster/partition", None)
    with follow(instance, lambda: run_id):
        resolved_job(name).execute_in_process(instance=instance, run_config=run_config, tags=tags, run_id=run_id,
                                              partition_key=partition, raise_on_error=False)
    return instance.get_run_by_id(run_id)


_SERVER_ENV: dict[str, str] = {}


def _server_fits() -> bool:
    """Can steps fork from this process's fork server, which imports this code once?

    A fresh interpreter per step would import torch, MLX and coremltools again (seconds each).
    The server lives as long as this process and keeps the environment it started with, which
    is where steps read their settings; after a change to them, steps spawn afresh.
    """
    env = {k: v for k, v in os.environ.items() if k.startswith(("LUME_", "DAGSTER_"))}
    _SERVER_ENV.update(env if not _SERVER_ENV else {})
    return env == _SERVER_ENV


def process_context():
    """The multiprocessing context for a run's or a track's own process (see `_server_fits`)."""
    if not _server_fits():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _start_method() -> dict:
    return {"forkserver": {"preload_modules": [__name__]}} if _server_fits() else {"spawn": {}}


def _newest_run(instance: dg.DagsterInstance, name: str, since: float) -> str | None:
    runs = instance.get_run_records(dg.RunsFilter(job_name=name), limit=1)
    return runs[0].dagster_run.run_id if runs and runs[0].create_timestamp.timestamp() >= since - 1 else None


@dataclass(frozen=True)
class Report:
    """One acceptance report as the instance recorded it."""

    run_id: str
    page: Path  # report.html
    gates_json: Path
    made_at: dt.datetime  # UTC

    def verdict(self) -> dict:
        return json.loads(self.gates_json.read_text())


def reports(instance: dg.DagsterInstance, limit: int = 100) -> list[Report]:
    """The newest acceptance reports, newest first."""
    records = instance.fetch_materializations(dg.AssetKey("acceptance_report"), limit=limit).records
    return [Report(r.run_id, Path(r.asset_materialization.metadata["report_html"].value),
                   Path(r.asset_materialization.metadata["gates_json"].value), dt.datetime.fromtimestamp(r.timestamp, dt.timezone.utc))
            for r in records]


def latest_report(instance: dg.DagsterInstance) -> tuple[Path, dict] | None:
    """(report.html, gates.json) of the newest acceptance report, or None before the first one."""
    newest = reports(instance, limit=1)
    return (newest[0].page, newest[0].verdict()) if newest else None
