"""The overnight training schedule: 01:00 local, only when a new validated track landed."""

import os
from pathlib import Path

import dagster as dg

from lume_v6_dagster.jobs import train_job

DEFAULT_CRON = "0 1 * * *"


def local_timezone() -> str:
    """LUME_SCHEDULE_TZ, else TZ, else the system zone (/etc/localtime), else UTC."""
    for key in ("LUME_SCHEDULE_TZ", "TZ"):
        if os.environ.get(key):
            return os.environ[key]
    link = Path("/etc/localtime")
    if link.is_symlink() and "zoneinfo/" in str(link.resolve()):
        return str(link.resolve()).split("zoneinfo/", 1)[1]
    return "UTC"


def training_decision(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    """Train when the newest pairs materialization is newer than the last dataset split."""
    pairs = instance.get_latest_materialization_event(dg.AssetKey("track_pairs"))
    trained = instance.get_latest_materialization_event(dg.AssetKey("dataset_split"))
    if pairs is None:
        return dg.SkipReason("no validated track yet: nothing to train on")
    if trained is not None and pairs.timestamp <= trained.timestamp:
        return dg.SkipReason(f"no new validated track since the last training (dataset_split run {trained.run_id[:8]})")
    return dg.RunRequest(tags={"lume/trigger": "new validated tracks"})


@dg.schedule(cron_schedule=os.environ.get("LUME_SCHEDULE_CRON", DEFAULT_CRON), job=train_job,
             execution_timezone=local_timezone(), default_status=dg.DefaultScheduleStatus.RUNNING)
def overnight_training(context: dg.ScheduleEvaluationContext):
    return training_decision(context.instance)
