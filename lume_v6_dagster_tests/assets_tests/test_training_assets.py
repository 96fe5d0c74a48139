"""materialize the training assets on ten simulated tracks with the tiny profile."""

import json
import shutil

import dagster as dg

from lume_v6_dagster.assets import capture, training
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore, TrainingHost
from lume_v6_dagster_tests.assets_tests.test_capture_assets import ASSETS as CAPTURE_ASSETS

TRAINING_ASSETS = [training.dataset_split, training.san_v6, training.encoder_flow_v6, training.v5_baseline]


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

    result = dg.materialize([*TRAINING_ASSETS, capture.track_pairs], selection=TRAINING_ASSETS, instance=instance, resources=resources)
    assert result.success
    split = json.loads((store.training_dir("dataset") / "split.json").read_text())
    assert split["excluded"] == {ids[0]: "capture changed after ingest"}
    assert not set(split["train"]) & set(split["val"])
    for name in ("san_v6", "encoder_flow_v6", "v5_baseline"):
        meta = result.asset_materializations_for_node(name)[0].metadata
        assert isinstance(meta["val_loss"].value, float)
        assert (tmp_path / meta["loss_plot"].value).exists() or meta["loss_plot"].value
    v5 = json.loads(next(store.training_dir("v5_baseline").glob("*/metrics.json")).read_text())
    v6 = json.loads(next(store.training_dir("encoder_flow_v6").glob("*/metrics.json")).read_text())
    assert v5["metrics"]["encoder_params"] < v6["metrics"]["encoder_params"]  # 64-D input, not 141
