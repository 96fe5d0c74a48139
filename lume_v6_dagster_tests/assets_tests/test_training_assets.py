"""materialize the training and release assets on ten simulated tracks with the tiny profile."""

import json
import shutil

import dagster as dg

from lume_v6_dagster.assets import capture, release, training
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore, TrainingHost
from lume_v6_dagster_tests.assets_tests.test_capture_assets import ASSETS as CAPTURE_ASSETS

TRAINING_ASSETS = [training.dataset_split, training.san_v6, training.encoder_flow_v6, training.v5_baseline]
RELEASE_ASSETS = [release.coreml_packages, release.smoke_test, release.acceptance_report, release.release_bundle]


def test_training_assets_materialize_with_metrics(tmp_path, sim_root):
    root = tmp_path / "captures"
    shutil.copytree(sim_root, root)
    instance = dg.DagsterInstance.ephemeral()
    store = ArtifactStore(root=str(tmp_path / "art"))
    resources = {"capture_store": CaptureStore(root=str(root)), "artifact_store": store,
                 "training_host": TrainingHost(profile="tiny", threads=1)}
    ids = sorted(p.name for p in root.iterdir() if p.is_dir())
    instance.add_dynamic_partitions(tracks.name, ids)
    for track in ids:
        assert dg.materialize(CAPTURE_ASSETS, partition_key=track, instance=instance, resources=resources).success
    (root / ids[0] / "session.jsonl").open("a").write("\n")  # changed after ingest: must be left out

    selection = TRAINING_ASSETS + RELEASE_ASSETS
    result = dg.materialize([*selection, capture.track_pairs], selection=selection, instance=instance, resources=resources)
    assert result.success
    split = json.loads((store.training_dir("dataset") / "split.json").read_text())
    assert split["excluded"] == {ids[0]: "capture changed after ingest"}
    assert not set(split["train"]) & set(split["val"])
    for name in ("san_v6", "encoder_flow_v6", "v5_baseline"):
        meta = result.asset_materializations_for_node(name)[0].metadata
        assert isinstance(meta["val_loss"].value, float)
        assert (store.training_dir(name)).exists()
    v5 = json.loads(next(store.training_dir("v5_baseline").glob("*/metrics.json")).read_text())
    v6 = json.loads(next(store.training_dir("encoder_flow_v6").glob("*/metrics.json")).read_text())
    assert v5["metrics"]["encoder_params"] < v6["metrics"]["encoder_params"]  # 64-D input, not 141

    smoke = result.asset_materializations_for_node("smoke_test")[0].metadata
    assert smoke["passed"].value is True
    report = result.asset_materializations_for_node("acceptance_report")[0].metadata
    gates = json.loads((tmp_path / "art" / "release" / "reports" / result.run_id / "gates.json").read_text())
    assert [g["number"] for g in gates["gates"]] == list(range(1, 10))
    assert gates["gates"][0]["verdict"] == "FAIL"  # 9 tracks < 30: coverage must fail, so V6 is not used
    assert report["useV6Models"].value is False and "<img" in open(report["report_html"].value).read()
    bundle = result.asset_materializations_for_node("release_bundle")[0].metadata["bundle"].value
    manifest = json.loads(open(f"{bundle}/manifest.json").read())
    assert manifest["useV6Models"] is False and manifest["dataset_fingerprint"] == split["fingerprint"]
    assert {p.split("/")[1] for p in manifest["sha256"] if p.startswith("v5/")} == {"ConditioningEncoderV5.mlpackage", "FlowGenerator1StepV5.mlpackage"}
