"""materialize the training and release assets on ten simulated tracks with the tiny profile.

One instance is trained once for the module; later tests build on it, each re-materializing
only what its scenario needs.
"""

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from lume_v6_dagster.assets import capture, release, training
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore, TrainingHost
from lume_v6_dagster_tests.assets_tests.test_capture_assets import ASSETS as CAPTURE_ASSETS

TRAINING_ASSETS = [training.dataset_split, training.san_v6, training.encoder_flow_v6, training.v5_baseline]
RELEASE_ASSETS = [release.coreml_packages, release.smoke_test, release.listening_previews, release.acceptance_report, release.release_bundle]
ALL = [*CAPTURE_ASSETS, *TRAINING_ASSETS, *RELEASE_ASSETS]
SHORT_CLIPS = {"ops": {"listening_previews": {"config": {"seconds": 3.0}}}}  # the clips' content is tested elsewhere


def finder_litter(folder: Path) -> None:
    """What a Mac volume adds: .DS_Store, AppleDouble files, and an mtime moved without new content."""
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "._audio.wav").write_bytes(b"\x00\x05\x16\x07")
    st = os.stat(folder / "audio.wav")
    os.utime(folder / "audio.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sim_root):
    tmp = tmp_path_factory.mktemp("trained")
    root = tmp / "captures"
    shutil.copytree(sim_root, root)
    instance = dg.DagsterInstance.ephemeral()
    store = ArtifactStore(root=str(tmp / "art"))
    resources = {"capture_store": CaptureStore(root=str(root)), "artifact_store": store,
                 "training_host": TrainingHost(profile="tiny", threads=1)}
    ids = sorted(p.name for p in root.iterdir() if p.is_dir())
    instance.add_dynamic_partitions(tracks.name, ids)
    for track in ids:
        assert dg.materialize(CAPTURE_ASSETS, partition_key=track, instance=instance, resources=resources).success
    (root / ids[0] / "session.jsonl").open("a").write("\n")  # changed after ingest: must be left out
    finder_litter(root / ids[1])  # not a change: must stay in
    selection = TRAINING_ASSETS + RELEASE_ASSETS
    result = dg.materialize(ALL, selection=selection, instance=instance, resources=resources, run_config=SHORT_CLIPS)
    assert result.success
    return instance, resources, result, ids


def materialize(trained, selection, **resources):
    instance, base, *_ = trained
    config = SHORT_CLIPS if release.listening_previews in selection else None
    return dg.materialize(ALL, selection=selection, instance=instance, resources={**base, **resources}, raise_on_error=False, run_config=config)


def meta(result, name) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(name)[0].metadata.items()}


def test_training_assets_materialize_with_metrics(trained):
    _, resources, result, ids = trained
    store = resources["artifact_store"]
    split = json.loads(Path(meta(result, "dataset_split")["split_path"]).read_text())
    assert split["excluded"] == {ids[0]: "capture changed after ingest (session.jsonl)"}  # Finder litter on ids[1] is not
    assert not set(split["train"]) & set(split["val"])
    for name in ("san_v6", "encoder_flow_v6", "v5_baseline"):
        m = meta(result, name)
        assert isinstance(m["val_loss"], float)
        assert (m["profile"], m["seed"], m["dataset_fingerprint"]) == ("tiny", 0, split["fingerprint"])
        assert Path(m["run_dir"]).is_dir() and m["determinism"]
    v5 = json.loads(next(store.training_dir("v5_baseline").glob("*/metrics.json")).read_text())
    v6 = json.loads(next(store.training_dir("encoder_flow_v6").glob("*/metrics.json")).read_text())
    assert v5["metrics"]["encoder_params"] < v6["metrics"]["encoder_params"]  # 64-D input, not 141

    assert meta(result, "smoke_test")["passed"] is True
    report = meta(result, "acceptance_report")
    gates = json.loads(Path(report["gates_json"]).read_text())
    assert [g["number"] for g in gates["gates"]] == [*range(1, 10), 9]  # gate 9, then the on-device record beside it
    assert gates["gates"][0]["verdict"] == "FAIL"  # 9 tracks < 30: coverage must fail, so V6 is not used
    page = open(report["report_html"]).read()
    assert report["useV6Models"] is False and "<img" in page and '<audio controls' in page
    assert "![" in report["plots"] and "data:image/png;base64," in report["plots"]  # shown in the UI, not linked
    assert isinstance(report["encoder_flow_v6_fd_ratio"], float) and isinstance(report["mode_accuracy"], float)
    assert f"<code>{ids[0]}</code>: capture changed after ingest (session.jsonl)" in page and "determinism (encoder_flow_v6)" in page and "-j train" in page
    manifest = json.loads(open(f"{meta(result, 'release_bundle')['bundle']}/manifest.json").read())
    assert manifest["useV6Models"] is False and manifest["dataset_fingerprint"] == split["fingerprint"]
    assert {p.split("/")[1] for p in manifest["sha256"] if p.startswith("v5/")} == {"ConditioningEncoderV5.mlpackage", "FlowGenerator1StepV5.mlpackage"}


def test_release_under_another_profile_uses_the_models_that_were_trained(trained):
    """The environment of the release run does not decide which models it exports."""
    result = materialize(trained, [release.coreml_packages, release.smoke_test], training_host=TrainingHost(profile="demo", seed=5))
    assert result.success
    models = meta(result, "coreml_packages")["models"]
    assert {m["profile"] for m in models.values()} == {"tiny"} and meta(result, "smoke_test")["passed"] is True


def test_bundle_refuses_packages_its_report_did_not_judge(trained):
    """Retrained and re-exported, but not re-judged: the old verdict must not ship the new packages."""
    retrained = materialize(trained, [training.encoder_flow_v6, release.coreml_packages], training_host=TrainingHost(profile="tiny", seed=1, threads=1))
    assert retrained.success
    alone = materialize(trained, [release.release_bundle])
    assert not alone.success
    failure = next(e for e in alone.all_events if e.is_step_failure).event_specific_data.error.message
    assert "did not judge the packages" in failure and "FlowGenerator1StepV6" in failure
    judged = materialize(trained, [release.smoke_test, release.listening_previews, release.acceptance_report, release.release_bundle])
    assert judged.success  # judged first, then shipped


def test_each_split_is_written_once_under_its_fingerprint(trained):
    """A newer dataset_split never rewrites the split a queued training step was asked to use."""
    instance, resources, result, ids = trained
    first = meta(result, "dataset_split")
    before = Path(first["split_path"]).read_bytes()
    (Path(resources["capture_store"].root) / ids[2] / "audio.wav").open("ab").write(b"\x00\x00")  # another track leaves
    again = materialize(trained, [training.dataset_split])
    second = meta(again, "dataset_split")
    assert second["fingerprint"] != first["fingerprint"] and second["split_path"] != first["split_path"]
    assert Path(first["split_path"]).read_bytes() == before
