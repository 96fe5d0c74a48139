"""The capture sensor, ticked with build_sensor_context against a real ephemeral instance."""

import json
import os
import shutil
import time

import dagster as dg
import pytest

from lume_v6_dagster.capture.folder import file_stats, folder_state, sha256_files, validate_capture
from lume_v6_dagster.capture.scan import ScanCursor, scan
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore
from lume_v6_dagster.sensors import capture_sensor


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "captures"
    root.mkdir()
    instance = dg.DagsterInstance.ephemeral()
    resources = {"capture_store": CaptureStore(root=str(root), settle_seconds=0),
                 "artifact_store": ArtifactStore(root=str(tmp_path / "artifacts"))}
    return root, instance, resources


def tick(instance, resources, cursor=None) -> dg.SensorResult:
    """One evaluation, then apply its partition requests as the daemon would."""
    ctx = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    result = capture_sensor(ctx)
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(tracks.name, list(req.partition_keys))
    return result


def copy_track(sim_root, root, name="s01-sky-garden"):
    return shutil.copytree(sim_root / name, root / name)


def test_partial_folder_skipped_complete_added_once(env, sim_root):
    root, instance, resources = env
    partial = root / "s02-turquoise-alcove"
    partial.mkdir()
    shutil.copy(sim_root / "s02-turquoise-alcove" / "dynamics.npz", partial)  # still copying
    copy_track(sim_root, root)

    first = tick(instance, resources)
    assert [r.partition_key for r in first.run_requests] == ["s01-sky-garden"]
    assert instance.get_dynamic_partitions(tracks.name) == ["s01-sky-garden"]
    assert "s02-turquoise-alcove" in ScanCursor.loads(first.cursor).pending

    second = tick(instance, resources, first.cursor)
    assert second.run_requests == []
    assert instance.get_dynamic_partitions(tracks.name) == ["s01-sky-garden"]

    for f in ("session.jsonl", "audio.wav"):  # the copy finishes
        shutil.copy(sim_root / "s02-turquoise-alcove" / f, partial)
    third = tick(instance, resources, second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["s02-turquoise-alcove"]
    assert ScanCursor.loads(third.cursor).pending == {}


def test_recent_folder_waits_for_settle_time(env, sim_root):
    root, instance, resources = env
    copy_track(sim_root, root)
    settling = {**resources, "capture_store": CaptureStore(root=str(root), settle_seconds=3600)}
    assert tick(instance, settling).run_requests == []


def test_run_key_follows_content_so_concurrent_ticks_cannot_duplicate(env, sim_root):
    root, instance, resources = env
    copy_track(sim_root, root)
    a = dg.build_sensor_context(instance=instance, resources=resources)
    b = dg.build_sensor_context(instance=instance, resources=resources)
    keys = {capture_sensor(a).run_requests[0].run_key, capture_sensor(b).run_requests[0].run_key}
    assert len(keys) == 1  # the daemon drops the second request with the same run key


def test_invalid_folder_name_reported_once(env, sim_root):
    root, instance, resources = env
    shutil.copytree(sim_root / "s01-sky-garden", root / "Take 1 (copy)")
    first = ScanCursor.loads(tick(instance, resources).cursor)
    res = scan(root, first, lambda t: False, lambda t: None, time.time(), 0, 24)
    assert res.new == [] and res.problems == []
    fresh = scan(root, ScanCursor(), lambda t: False, lambda t: None, time.time(), 0, 24)
    assert "not a valid track id" in fresh.problems[0]


def ingest(resources, folder):
    """Record the folder as ingested, as raw_capture and track_pairs do."""
    store = resources["artifact_store"]
    record = {"sha256": sha256_files(folder), "stats": file_stats(folder)}
    store.raw_record_path(folder.name).parent.mkdir(parents=True)
    store.raw_record_path(folder.name).write_text(json.dumps(record))
    store.pairs_pointer(folder.name).write_text(json.dumps({"file": "pairs/0.npz"}))


def test_changed_after_ingest_is_flagged(env, sim_root):
    root, instance, resources = env
    folder = copy_track(sim_root, root)
    cursor = tick(instance, resources).cursor
    ingest(resources, folder)
    (folder / "audio.wav").unlink()  # replaced by a new copy: the folder's ctime moves
    shutil.copy(sim_root / "s02-turquoise-alcove" / "audio.wav", folder / "audio.wav")
    res = tick(instance, resources, cursor)
    assert res.run_requests == [] and res.asset_events[0].partition == "s01-sky-garden"


def test_finder_files_and_a_touch_are_not_a_change(env, sim_root):
    """.DS_Store, AppleDouble ._* files and a moved mtime leave a capture's identity alone."""
    from lume_v6_dagster_tests.assets_tests.test_training_assets import finder_litter

    root, instance, resources = env
    folder = copy_track(sim_root, root)
    key = tick(instance, resources).run_requests[0].run_key
    ingest(resources, folder)
    finder_litter(folder)
    res = tick(instance, resources)  # a fresh cursor opens every folder
    assert res.run_requests == [] and res.asset_events == []
    litter = copy_track(sim_root, root / "other", "s01-sky-garden")  # the same capture, littered before it is seen
    (litter / ".DS_Store").write_bytes(b"\x00Bud1")
    (litter / "._audio.wav").write_bytes(b"\x00\x05")
    assert folder_state(litter, time.time(), 0).fingerprint == key.rsplit(":", 1)[1]
    assert validate_capture(litter) == []


def test_failed_ingest_is_requested_again_when_a_file_is_rewritten_in_place(env, sim_root):
    root, instance, resources = env
    folder = copy_track(sim_root, root)
    good = (folder / "audio.wav").read_bytes()
    (folder / "audio.wav").write_bytes(b"RIFF broken copy")
    first = tick(instance, resources)
    assert len(first.run_requests) == 1  # its run fails: no pairs
    second = tick(instance, resources, first.cursor)
    assert second.run_requests == []  # same content: not again
    old = os.stat(folder).st_ctime_ns
    with open(folder / "audio.wav", "r+b") as f:  # rewritten in place: the folder's ctime stays
        f.write(good)
    assert os.stat(folder).st_ctime_ns == old
    third = tick(instance, resources, second.cursor)
    assert [r.partition_key for r in third.run_requests] == ["s01-sky-garden"]
    assert third.run_requests[0].run_key != first.run_requests[0].run_key
    ingest(resources, folder)
    assert ScanCursor.loads(tick(instance, resources, third.cursor).cursor).requested == {}


def test_folders_deleted_while_pending_leave_the_cursor(env, sim_root):
    root, instance, resources = env
    partial = root / "s02-turquoise-alcove"
    partial.mkdir()
    shutil.copy(sim_root / "s02-turquoise-alcove" / "dynamics.npz", partial)
    first = tick(instance, resources)
    assert "s02-turquoise-alcove" in ScanCursor.loads(first.cursor).pending
    shutil.rmtree(partial)
    assert ScanCursor.loads(tick(instance, resources, first.cursor).cursor).pending == {}


def test_tick_opens_only_what_changed(env, sim_root):
    root, *_ = env
    for i in range(20):
        (root / f"old-{i:02d}").mkdir()
    seen = max(d.stat().st_ctime for d in root.iterdir())
    time.sleep(0.05)
    copy_track(sim_root, root)  # the only folder newer than the watermark
    res = scan(root, ScanCursor(watermark=seen), lambda t: False, lambda t: None, time.time(), 0, 24, lookback=0)
    assert res.opened == 1 and [t for t, _ in res.new] == ["s01-sky-garden"]
    ingested = scan(root, res.cursor, lambda t: t == "s01-sky-garden", lambda t: [], time.time(), 0, 24, lookback=0)
    assert ingested.opened == 1 and ingested.cursor.requested == {}  # in flight until it has pairs
    again = scan(root, ingested.cursor, lambda t: t == "s01-sky-garden", lambda t: [], time.time(), 0, 24, lookback=0)
    assert again.opened == 0


def test_stale_incomplete_folder_is_reported(env):
    root, *_ = env
    (root / "s09-aurora-veil").mkdir()
    cursor = ScanCursor(pending={"s09-aurora-veil": time.time() - 30 * 3600})
    res = scan(root, cursor, lambda t: False, lambda t: None, time.time(), 0, 24)
    assert any("incomplete for over 24" in p for p in res.problems)
