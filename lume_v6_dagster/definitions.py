"""The code location: assets, checks, jobs, sensors and resources wired together."""

import dagster as dg

from lume_v6_dagster.assets import capture
from lume_v6_dagster.jobs import ingest_track_job
from lume_v6_dagster.resources import default_resources
from lume_v6_dagster.sensors import capture_sensor

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([capture]),
    asset_checks=dg.load_asset_checks_from_modules([capture]),
    jobs=[ingest_track_job],
    sensors=[capture_sensor],
    resources=default_resources(),
)
