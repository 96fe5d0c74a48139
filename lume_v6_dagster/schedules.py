"""The overnight training schedule: 01:00 local, when new data landed, the model code changed or the last training did not finish;
the release steps alone when only the judging code changed (the same models, judged again)."""

import os
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg

from lume_v6_dagster import code_version
from lume_v6_dagster.assets import release
from lume_v6_dagster.jobs import train_job

DEFAULT_CRON = "0 1 * * *"
MAX_ATTEMPTS = 3  # failed training runs on the same data before the schedule stops retrying
TRAINED = ("san_v6", "encoder_flow_v6", "v5_baseline", "release_bundle")  # a finished training has all of these
MODELS = TRAINED[:3]  # each records the model code that made it
RELEASE_STEPS = sorted(dg.AssetSelection.groups(release.GROUP).resolve(dg.load_assets_from_modules([release])))  # the `release` job's
ACTIVE = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)


def local_timezone() -> str:
    """LUME_SCHEDULE_TZ, else TZ, else the system zone (/etc/localtime), else UTC."""
    for key in ("LUME_SCHEDULE_TZ", "TZ"):
        if os.environ.get(key):
            return os.environ[key]
    link = Path("/etc/localtime")
    if link.is_symlink() and "zoneinfo/" in str(link.resolve()):
        return str(link.resolve()).split("zoneinfo/", 1)[1]
    return "UTC"


def _latest(instance: dg.DagsterInstance, key: str):
    return instance.get_latest_materialization_event(dg.AssetKey(key))


def _pending_reason(instance: dg.DagsterInstance, pairs) -> str | None:
    """Why training should run: new pairs since the last split, a training not finished since it, or models
    another version of the model code made (they would otherwise ship as if this code had made them)."""
    split = _latest(instance, "dataset_split")
    if split is None or pairs.timestamp > split.timestamp:
        return "new validated tracks"
    stale = [k for k in TRAINED if (e := _latest(instance, k)) is None or e.timestamp < split.timestamp]
    if stale:
        return f"training incomplete: {', '.join(stale)} not materialized since dataset_split (run {split.run_id[:8]})"
    now = code_version.model_code_version()
    made = {k: v for k in MODELS if (v := _recorded_code(instance, k)) not in (None, now)}
    if made:
        return f"model code changed: {', '.join(f'{k} made by {v}' for k, v in made.items())}, this checkout is {now}"
    return None


def _recorded_code(instance: dg.DagsterInstance, key: str, field: str = "code_version") -> str | None:
    meta = _latest(instance, key).asset_materialization.metadata
    return meta[field].value if field in meta else None


def _rejudge_reason(instance: dg.DagsterInstance) -> str | None:
    """Why the trained models should be judged again: the last verdict was given by another version of the judging code."""
    if _latest(instance, "acceptance_report") is None:
        return None
    judged_by, now = _recorded_code(instance, "acceptance_report", "judging_code_version"), code_version.judging_code_version()
    return None if judged_by == now else f"judging code changed: the acceptance report was judged by {judged_by}, this checkout is {now}"


def training_decision(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    """Train on new data, or retry an unfinished training, or judge the same models again (the release steps alone),
    at most MAX_ATTEMPTS failures per data."""
    pairs = _latest(instance, "track_pairs")
    if pairs is None:
        return dg.SkipReason("no validated track yet: nothing to train on")
    reason, steps = _pending_reason(instance, pairs), None
    if reason is None and (reason := _rejudge_reason(instance)):
        steps = RELEASE_STEPS
    if reason is None:
        return dg.SkipReason("no new validated track since the last training, and it finished (models and bundle up to date, "
                             "judged by this judging code)")
    runs = instance.get_run_records(dg.RunsFilter(job_name=train_job.name, created_after=datetime.fromtimestamp(pairs.timestamp, timezone.utc)))
    if active := [r.dagster_run for r in runs if r.dagster_run.status in ACTIVE]:
        return dg.SkipReason(f"{reason}; training run {active[0].run_id[:8]} is still {active[0].status.value}")
    failed = [r.dagster_run for r in runs if r.dagster_run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)]
    if len(failed) >= MAX_ATTEMPTS:
        return dg.SkipReason(f"{reason}; but training failed {len(failed)} times on this data (latest: run {failed[0].run_id[:8]}): "
                             "fix the cause, then launch `train` by hand")
    return dg.RunRequest(tags={"lume/trigger": reason, "lume/attempt": f"{len(failed) + 1} of {MAX_ATTEMPTS}"}, asset_selection=steps)


@dg.schedule(cron_schedule=os.environ.get("LUME_SCHEDULE_CRON", DEFAULT_CRON), job=train_job,
             execution_timezone=local_timezone(), default_status=dg.DefaultScheduleStatus.RUNNING)
def overnight_training(context: dg.ScheduleEvaluationContext):
    return training_decision(context.instance)
