"""Jobs: build one track (sensor-driven)."""

import dagster as dg

from lume_v6_dagster.assets.capture import GROUP as CAPTURE_GROUP

ingest_track_job = dg.define_asset_job(
    "ingest_track",
    selection=dg.AssetSelection.groups(CAPTURE_GROUP),
    description="Raw capture -> validated capture -> pairs for one track, with its checks.",
)
