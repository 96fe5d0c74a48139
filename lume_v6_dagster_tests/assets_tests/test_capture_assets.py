"""materialize the per-track assets on real simulated captures."""

import json
import shutil

import dagster as dg
import numpy as np
import pytest

from lume_v6_dagster.assets import capture
from lume_v6_dagster.pairs import read_pairs
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore

ASSETS = [capture.raw_capture, capture.validated_capture, capture.track_pairs, capture.dynamics_schema, capture.pairs_schema]


@pytest.fixture
def setup(tmp_path, sim_root):
    root = tmp_path / "captures"
    for name in ("s01-sky-garden", "s04-iridescent-beauty"):
        shutil.copytree(sim_root / name, root / name)
    instance = dg.DagsterInstance.ephemeral()
    resources = {"capture_store": CaptureStore(root=str(root)), "artifact_store": ArtifactStore(root=str(tmp_path / "art"))}
    return root, instance, resources


def run(instance, resources, track):
    instance.add_dynamic_partitions(tracks.name, [track])
    return dg.materialize(ASSETS, partition_key=track, instance=instance, resources=resources, raise_on_error=False)


def test_two_tracks_build_pairs_with_metadata_and_raw_untouched(setup):
    root, instance, resources = setup
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for track in ("s01-sky-garden", "s04-iridescent-beauty"):
        result = run(instance, resources, track)
        assert result.success
        meta = result.asset_materializations_for_node("track_pairs")[0].metadata
        assert meta["pairs_total"].value == 900  # 30 s at 30 Hz
        kept, dropped = meta["pairs_kept"].value, meta["pairs_dropped_dropout"].value + meta["pairs_dropped_low_confidence"].value
        assert kept + dropped == 900 and kept > 600
        checks = result.get_asset_check_evaluations()
        assert {c.check_name for c in checks} == {"dynamics_schema", "pairs_schema"} and all(c.passed for c in checks)
        pairs = read_pairs(resources["artifact_store"].pairs_path(track))
        assert pairs.checksums == json.loads(resources["artifact_store"].raw_record_path(track).read_text())["sha256"]
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_bad_values_fail_the_blocking_check_and_stop_pairs(setup):
    root, instance, resources = setup
    with np.load(root / "s01-sky-garden" / "dynamics.npz") as z:
        arrays = dict(z)
    arrays["dynamics"][100, 3] = np.inf
    np.savez(root / "s01-sky-garden" / "dynamics.npz", **arrays)
    bad = run(instance, resources, "s01-sky-garden")
    check = [c for c in bad.get_asset_check_evaluations() if c.check_name == "dynamics_schema"][0]
    assert not check.passed
    assert not bad.asset_materializations_for_node("track_pairs")
    assert run(instance, resources, "s04-iridescent-beauty").success  # one bad track never stops the others


def test_structural_violation_fails_validated_capture_with_the_rule(setup):
    root, instance, resources = setup
    (root / "s01-sky-garden" / "audio.wav").write_bytes(b"not audio")
    result = run(instance, resources, "s01-sky-garden")
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure][0]
    assert "audio.wav" in failure.event_specific_data.error.message


def test_content_changed_after_ingest_is_refused(setup):
    root, instance, resources = setup
    assert run(instance, resources, "s01-sky-garden").success
    (root / "s01-sky-garden" / "session.jsonl").open("a").write("\n")
    result = run(instance, resources, "s01-sky-garden")
    assert not result.success
    failure = [e for e in result.all_events if e.is_step_failure][0]
    assert "changed after the track was ingested" in failure.event_specific_data.error.message
