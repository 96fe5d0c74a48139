"""The capture sensor: each new, complete folder becomes a partition and an ingest run."""

import time

import dagster as dg

from lume_v6_dagster.capture.folder import changed_files
from lume_v6_dagster.capture.scan import ScanCursor, scan
from lume_v6_dagster.jobs import INGEST_TRACK
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore


def _ingest_changes(capture_store: CaptureStore, artifact_store: ArtifactStore, track: str) -> list[str] | None:
    """None until the track has pairs; then the contract files changed since its ingest."""
    record = artifact_store.raw_record(track)
    if record is None or artifact_store.pairs_path(track) is None:
        return None
    return changed_files(capture_store.folder(track), record.get("stats", {}), record["sha256"])


@dg.sensor(job_name=INGEST_TRACK, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def capture_sensor(context: dg.SensorEvaluationContext, capture_store: CaptureStore, artifact_store: ArtifactStore) -> dg.SensorResult:
    """Cursor-based scan of the capture root; a tick costs what changed, not what exists.

    The run key carries the folder's fingerprint, so the same content is never run twice
    (even by two ticks at once) and new content, such as a fixed copy of a track whose
    ingest failed, always gets its own run.
    """
    result = scan(
        capture_store.root,
        ScanCursor.loads(context.cursor),
        is_known=lambda t: context.instance.has_dynamic_partition(tracks.name, t),
        ingest_changes=lambda t: _ingest_changes(capture_store, artifact_store, t),
        now=time.time(),
        settle_seconds=capture_store.settle_seconds,
        stale_hours=capture_store.stale_hours,
    )
    for problem in result.problems:
        context.log.warning(problem)
    new_ids = [t for t, _ in result.new]
    observations = [
        dg.AssetObservation(asset_key="raw_capture", partition=t, metadata={"changed_after_ingest": True})
        for t in result.changed
    ]
    requests = result.new + result.retry
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"ingest:{t}:{fp}", partition_key=t) for t, fp in requests],
        dynamic_partitions_requests=[tracks.build_add_request(new_ids)] if new_ids else [],
        asset_events=observations,
        cursor=result.cursor.dumps(),
        skip_reason=None if requests else f"no new complete capture folder ({result.opened} opened, {len(result.cursor.pending)} pending)",
    )
