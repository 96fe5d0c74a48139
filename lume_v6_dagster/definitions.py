"""The code location: assets, checks, jobs, sensors, schedules and resources wired together."""

import dagster as dg

from lume_v6_dagster import deployment
from lume_v6_dagster.assets import capture, release, training
from lume_v6_dagster.jobs import ingest_track_job, judge_job, release_job, train_job
from lume_v6_dagster.resources import default_resources
from lume_v6_dagster.schedules import overnight_training
from lume_v6_dagster.sensors import capture_sensor


def build_defs() -> dg.Definitions:
    """Definitions with resources and executor read from the environment now (the demo sets it first)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([capture, training, release]),
        asset_checks=dg.load_asset_checks_from_modules([capture]),
        jobs=[ingest_track_job(deployment.track_executor()), train_job, release_job, judge_job],
        sensors=[capture_sensor],
        schedules=[overnight_training],
        resources=default_resources(),
        executor=deployment.executor(),
    )


defs = build_defs()
