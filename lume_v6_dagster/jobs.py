"""Jobs: build one track (sensor-driven) and train on every track (scheduled overnight)."""

import dagster as dg

from lume_v6_dagster.assets.capture import GROUP as CAPTURE_GROUP
from lume_v6_dagster.assets.training import GROUP as TRAINING_GROUP

ingest_track_job = dg.define_asset_job(
    "ingest_track",
    selection=dg.AssetSelection.groups(CAPTURE_GROUP),
    description="Raw capture -> validated capture -> pairs for one track, with its checks.",
)

train_job = dg.define_asset_job(
    "train",
    selection=dg.AssetSelection.groups(TRAINING_GROUP),
    description="Split + statistics, then SAN V6, encoder + flow V6 and the V5 baseline.",
)
