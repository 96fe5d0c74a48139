"""Jobs: build one track (sensor-driven); train and release (scheduled overnight); release alone; judge again."""

import dagster as dg

from lume_v6_dagster.assets.capture import GROUP as CAPTURE_GROUP
from lume_v6_dagster.assets.release import GROUP as RELEASE_GROUP
from lume_v6_dagster.assets.training import GROUP as TRAINING_GROUP

INGEST_TRACK = "ingest_track"


def ingest_track_job(executor_def: dg.ExecutorDefinition | None = None):
    """One track's ingest; its steps run as `executor_def` says (the deployment's choice, read when the definitions are built)."""
    return dg.define_asset_job(
        INGEST_TRACK,
        selection=dg.AssetSelection.groups(CAPTURE_GROUP),
        description="Raw capture -> validated capture -> pairs for one track, with its checks.",
        executor_def=executor_def,
    )

train_job = dg.define_asset_job(
    "train",
    selection=dg.AssetSelection.groups(TRAINING_GROUP, RELEASE_GROUP),
    description="Split + statistics, SAN V6, encoder + flow V6, V5 baseline, then export, smoke test, report, bundle.",
)

release_job = dg.define_asset_job(
    "release",
    selection=dg.AssetSelection.groups(RELEASE_GROUP),
    description="Export, smoke test, acceptance report and bundle from the trained models.",
)

judge_job = dg.define_asset_job(
    "judge",
    selection=dg.AssetSelection.assets("acceptance_report", "release_bundle"),
    description="Judge the last exported packages again (after a sign-off or a threshold change) and bundle them.",
)
