"""Nothing lost: atomic outputs survive a crash mid-write; failed tracks retry alone; limits hold."""

import os
import shutil
import stat
import threading

import dagster as dg
import numpy as np
import pytest

from lume_v6_dagster.atomic_files import atomic_dir, atomic_path, save_npz, write_json
from lume_v6_dagster.capture import audio
from lume_v6_dagster.capture.folder import validate_capture
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore
from lume_v6_dagster.sensors import capture_sensor
from lume_v6_dagster_tests.assets_tests.test_capture_assets import ASSETS


def test_crash_mid_write_leaves_the_previous_output_intact(tmp_path):
    target = tmp_path / "pairs.npz"
    save_npz(target, x=np.arange(3))
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_path(target, suffix=".npz") as tmp:
            tmp.write_bytes(b"half a file")
            raise RuntimeError("host lost power")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.npz"]  # no temporary left behind


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)])
def test_atomic_outputs_get_the_process_umask_like_a_plain_write(tmp_path, umask, file_mode, dir_mode):
    """Another account on the shared artifact root reads what a worker wrote (tempfile alone makes it 0600)."""
    old = os.umask(umask)
    try:
        write_json(tmp_path / "metrics.json", {"fd": 1.0})
        with atomic_dir(tmp_path / "bundle") as folder:
            (folder / "manifest.json").write_text("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "bundle").stat().st_mode) == dir_mode


def test_audio_over_the_length_limit_is_refused_unread(track, monkeypatch):
    monkeypatch.setattr(audio, "MAX_SECONDS", 10)
    assert any("refused unread" in str(v) for v in validate_capture(track))


def test_failed_partition_is_retried_alone(tmp_path, sim_root):
    root = tmp_path / "captures"
    for name in ("s01-sky-garden", "s02-turquoise-alcove"):
        shutil.copytree(sim_root / name, root / name)
    good_audio = (root / "s01-sky-garden" / "audio.wav").read_bytes()
    (root / "s01-sky-garden" / "audio.wav").write_bytes(b"still copying")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(tracks.name, ["s01-sky-garden", "s02-turquoise-alcove"])
    resources = {"capture_store": CaptureStore(root=str(root)), "artifact_store": ArtifactStore(root=str(tmp_path / "art"))}
    run = lambda t: dg.materialize(ASSETS, partition_key=t, instance=instance, resources=resources, raise_on_error=False)
    assert not run("s01-sky-garden").success
    assert run("s02-turquoise-alcove").success
    (root / "s01-sky-garden" / "audio.wav").write_bytes(good_audio)  # the copy is fixed
    assert run("s01-sky-garden").success
    assert instance.get_materialized_partitions(dg.AssetKey("track_pairs")) == {"s01-sky-garden", "s02-turquoise-alcove"}


def test_two_sensor_ticks_at_once_request_each_track_once(tmp_path, sim_root):
    root = tmp_path / "captures"
    for name in ("s01-sky-garden", "s02-turquoise-alcove"):
        shutil.copytree(sim_root / name, root / name)
    with dg.instance_for_test() as instance:
        resources = {"capture_store": CaptureStore(root=str(root), settle_seconds=0), "artifact_store": ArtifactStore(root=str(tmp_path / "art"))}
        results = []

        def tick():
            results.append(capture_sensor(dg.build_sensor_context(instance=instance, resources=resources)))

        threads = [threading.Thread(target=tick) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in results:
            for req in r.dynamic_partitions_requests:
                instance.add_dynamic_partitions(tracks.name, list(req.partition_keys))
        keys = [req.run_key for r in results for req in r.run_requests]
        assert len(keys) == 4 and len(set(keys)) == 2  # the daemon launches one run per run key
        assert sorted(instance.get_dynamic_partitions(tracks.name)) == ["s01-sky-garden", "s02-turquoise-alcove"]
