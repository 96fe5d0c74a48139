"""materialize the training and release assets on eleven simulated tracks with the tiny profile.

One instance is trained once for the module; later tests build on it, each re-materializing
only what its scenario needs.
"""

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest
import torch

from lume_v6_dagster import code_version, contract, retention
from lume_v6_dagster.assets import capture, release, training
from lume_v6_dagster.checksums import sha256_file
from lume_v6_dagster.dataset import DatasetSplit
from lume_v6_dagster.export.bundle import package_digest
from lume_v6_dagster.noise import NoiseProcess
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore, TrainingHost
from lume_v6_dagster.simulate import plan_tracks, simulate_track
from lume_v6_dagster_tests.assets_tests.test_capture_assets import ASSETS as CAPTURE_ASSETS

TRAINING_ASSETS = [training.dataset_split, training.san_v6, training.encoder_flow_v6, training.v5_baseline]
RELEASE_ASSETS = [release.coreml_packages, release.smoke_test, release.listening_previews, release.acceptance_report, release.release_bundle]
ALL = [*CAPTURE_ASSETS, *TRAINING_ASSETS, *RELEASE_ASSETS]
SHORT_CLIPS = {"ops": {"listening_previews": {"config": {"seconds": 1.5}}}}  # shorter than the profile's; content is tested elsewhere


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
    simulate_track(plan_tracks(11, 0.5, seed=7)[10], root)  # a third sky garden: s01 is left out below, and a mode needs two tracks
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


def materialize(trained, selection, run_config=None, **resources):
    instance, base, *_ = trained
    config = SHORT_CLIPS if release.listening_previews in selection else run_config
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
    assert meta(result, "listening_previews")["seconds"] == 1.5  # the run's config, not the profile's length
    report = meta(result, "acceptance_report")
    gates = json.loads(Path(report["gates_json"]).read_text())
    assert [g["number"] for g in gates["gates"]] == [*range(1, 10), 9]  # gate 9, then the on-device record beside it
    assert gates["gates"][0]["verdict"] == "FAIL"  # 10 tracks < 30: coverage must fail, so V6 is not used
    page = open(report["report_html"]).read()
    assert report["useV6Models"] is False and "<img" in page and '<audio controls' in page
    assert "![" in report["plots"] and "data:image/png;base64," in report["plots"]  # shown in the UI, not linked
    assert isinstance(report["encoder_flow_v6_fd_ratio"], float) and isinstance(report["mode_accuracy"], float)
    assert f"<code>{ids[0]}</code>: capture changed after ingest (session.jsonl)" in page and "determinism (encoder_flow_v6)" in page and "-j train" in page
    manifest = json.loads(open(f"{meta(result, 'release_bundle')['bundle']}/manifest.json").read())
    assert manifest["useV6Models"] is False and manifest["dataset_fingerprint"] == split["fingerprint"]
    assert manifest["code_version"] == code_version.model_code_version() == meta(result, "encoder_flow_v6")["code_version"]
    assert not manifest["v5_fallback"]["configured"] and "retrained in this chain" in manifest["v5_fallback"]["source"]
    assert "retrained in this chain" in page and "model code" in page
    assert {p.split("/")[1] for p in manifest["sha256"] if p.startswith("v5/")} == {"ConditioningEncoderV5.mlpackage", "FlowGenerator1StepV5.mlpackage"}


def test_the_noise_process_is_fitted_saved_with_the_weights_shipped_and_used_by_previews_and_gates(trained):
    """The manifest states the noise the app must draw; it is the one in model.pt, the previews' and the report's."""
    _, _, result, _ = trained
    v6 = meta(result, "encoder_flow_v6")
    stated = json.loads(open(f"{meta(result, 'release_bundle')['bundle']}/manifest.json").read())["noise_process"]["FlowGenerator1StepV6"]
    in_weights = torch.load(Path(v6["run_dir"]) / "model.pt", weights_only=True)["noise"]
    assert stated == in_weights == v6["noise_process"] and stated["kind"] == "held-ar1" and set(stated["modes"]) == set(contract.MODES)
    process = NoiseProcess.from_dict(stated)
    for mode, m in stated["modes"].items():  # the scan it was chosen from, per mode, on training tracks
        assert f"| {mode} | {m['jump']} | {m['rho']} |" in v6["noise_fit"] and v6[f"noise_jump_{mode}"] == m["jump"]
        assert f"| {mode} | {m['level_ema']} | {m['level_offset_db']:+.2f} |" in v6["noise_fit"] and v6[f"noise_level_ema_{mode}"] == m["level_ema"]
        assert v6[f"noise_level_offset_{mode}"] == m["level_offset_db"]
    assert "s[t] = level_ema * L[t]" in stated["level_smoothing"] and "x += s[t] + level_offset_db - L[t]" in stated["level_smoothing"]
    assert NoiseProcess.from_dict(meta(result, "v5_baseline")["noise_process"]) == NoiseProcess.same()  # the V5 recipe: fresh noise every frame
    assert 0 < v6["noise_fit_seconds"] < v6["train_seconds"]  # the fit's share of the model's time, on its own
    previews = json.loads((Path(meta(result, "listening_previews")["folder"]) / "previews.json").read_text())
    assert previews["noise"]["V6"] == stated
    gates = json.loads(Path(meta(result, "acceptance_report")["gates_json"]).read_text())
    assert process.describe() in open(meta(result, "acceptance_report")["report_html"]).read()
    assert {"over_time.v6.change_ratio", "over_time.v5.sequence_fd", "over_time.real.lag1", "over_time.v6.level_change_ratio",
            "over_time.v6.aurora_veil.level_change_ratio"} <= set(gates["metrics"])
    assert gates["metrics"]["over_time.real.level_change_ratio"] > 0
    assert {"over_time.v6.controls.change_ratio", "over_time.v6.onset_strength.lag1", "over_time.v6.aurora_veil.spread_ratio",
            "over_time.v6.loudness_db.san_on_real_music.change_ratio"} <= set(gates["metrics"])
    report = Path(meta(result, "acceptance_report")["report_html"]).with_name("report.md").read_text()
    assert "| SAN control | windows |" in report and "| loudness_db, SAN on the real music | " in report
    assert "| sampler | change ratio | level change |" in report
    assert "over time: FD" in gates["gates"][2]["measured"] and "x real-vs-real" in gates["gates"][2]["measured"]


def test_a_record_that_states_other_noise_than_the_weights_is_refused(trained):
    """model.pt is the truth of what ships; a record that disagrees with it stops the release, naming both."""
    records = json.loads(Path(meta(trained[2], "acceptance_report")["gates_json"]).read_text())["models"]
    stated = records["encoder_flow_v6"]["noise_process"]
    assert release._trained(records).noise["encoder_flow_v6"] == NoiseProcess.from_dict(stated)
    records["encoder_flow_v6"]["noise_process"] = {**stated, "modes": {**stated["modes"], "sky_garden": {"jump": 0.5, "rho": 0.5}}}
    with pytest.raises(dg.Failure, match="ships noise .* but encoder_flow_v6's record says"):
        release._trained(records)


def test_release_under_another_profile_uses_the_models_that_were_trained(trained):
    """The environment of the release run does not decide which models it exports."""
    result = materialize(trained, [release.coreml_packages, release.smoke_test], training_host=TrainingHost(profile="demo", seed=5))
    assert result.success
    models = meta(result, "coreml_packages")["models"]
    assert {m["profile"] for m in models.values()} == {"tiny"} and meta(result, "smoke_test")["passed"] is True


def test_each_split_is_written_once_under_its_fingerprint(trained):
    """A newer dataset_split never rewrites the split a queued training step was asked to use."""
    instance, resources, result, ids = trained
    first = meta(result, "dataset_split")
    before = Path(first["split_path"]).read_bytes()
    session = Path(resources["capture_store"].root) / ids[0] / "session.jsonl"
    session.write_bytes(session.read_bytes()[:-1])  # the track left out is restored: it comes back
    again = materialize(trained, [training.dataset_split])
    second = meta(again, "dataset_split")
    assert second["fingerprint"] != first["fingerprint"] and second["split_path"] != first["split_path"]
    assert Path(first["split_path"]).read_bytes() == before


def failure(result) -> str:
    """The step's error as the UI shows it: the message and every cause below it."""
    error, lines = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error, []
    while error is not None:
        lines.append(error.message)
        error = error.cause
    return "\n".join(lines)


def step_logs(trained, result, step: str) -> list[str]:
    return [e.user_message for e in trained[0].all_logs(result.run_id) if e.step_key == step]


def test_a_change_to_the_model_code_trains_afresh_and_the_old_models_are_refused(trained, monkeypatch):
    """Same data, same profile and seed, other code: a new run folder and a full training, never a resume of old weights."""
    before = meta(trained[2], "encoder_flow_v6")
    monkeypatch.setattr(code_version, "model_code_version", lambda: "c0dec0dec0de")
    fresh = materialize(trained, [training.encoder_flow_v6])
    assert fresh.success
    after = meta(fresh, "encoder_flow_v6")
    assert after["run_dir"] != before["run_dir"] and after["run_dir"].endswith("-codec0dec0dec0de") and after["code_version"] == "c0dec0dec0de"
    assert not any(m.startswith("resumed from epoch") for m in step_logs(trained, fresh, "encoder_flow_v6"))
    mixed = materialize(trained, [release.coreml_packages])  # SAN and V5 were trained by the other code
    assert not mixed.success and "code_version differs" in failure(mixed) and "encoder_flow_v6: c0dec0dec0de" in failure(mixed)
    monkeypatch.undo()
    stale = materialize(trained, [release.coreml_packages])  # all three now differ from this code... or one does
    assert not stale.success and "code_version differs" in failure(stale)
    assert materialize(trained, [training.encoder_flow_v6]).success  # the old folder: resumed, not retrained


def test_a_verdict_another_judging_code_gave_is_not_shipped(trained, monkeypatch):
    """A change to the gates left the old verdict on disk, and the bundle shipped it as if this code had judged."""
    judged_by = meta(trained[2], "acceptance_report")["judging_code_version"]
    manifest = json.loads((Path(meta(trained[2], "release_bundle")["bundle"]) / "manifest.json").read_text())
    assert judged_by == manifest["judging_code_version"] == code_version.judging_code_version()
    monkeypatch.setattr(code_version, "judging_code_version", lambda: "1udge1udge00")
    stale = materialize(trained, [release.release_bundle])
    assert not stale.success and f"judged by judging code {judged_by}, and this code is 1udge1udge00" in failure(stale)


def test_a_release_takes_one_coherent_set_of_models(trained):
    """encoder_flow_v6 re-trained alone with another seed: the export refuses the mixed set, naming it."""
    alone = materialize(trained, [training.encoder_flow_v6], training_host=TrainingHost(profile="tiny", seed=1, threads=1))
    assert alone.success
    mixed = materialize(trained, [release.coreml_packages])
    assert not mixed.success and "seed differs" in failure(mixed) and "encoder_flow_v6: 1" in failure(mixed) and "san_v6: 0" in failure(mixed)
    assert materialize(trained, [training.encoder_flow_v6]).success  # back to one set (seed 0's folder, resumed)


def test_the_bundle_ships_the_folder_its_report_judged_even_after_a_newer_export(trained, tmp_path):
    """A newer export lands after the report: the bundle and a sign-off's re-judge use the judged packages; a changed one is refused."""
    result = trained[2]
    judged = json.loads(Path(meta(result, "acceptance_report")["gates_json"]).read_text())
    newer = materialize(trained, [*TRAINING_ASSETS[1:], release.coreml_packages], training_host=TrainingHost(profile="tiny", seed=1, threads=1))
    assert newer.success and meta(newer, "coreml_packages")["packages_sha256"] != judged["packages_sha256"]
    shipped = materialize(trained, [release.release_bundle])
    assert shipped.success
    manifest = json.loads((Path(meta(shipped, "release_bundle")["bundle"]) / "manifest.json").read_text())
    v6 = {n: d for n, d in judged["packages_sha256"].items() if n.endswith("V6")}
    assert manifest["packages_sha256"] == v6 and {m["seed"] for m in manifest["models"].values()} == {0}
    assert package_digest(Path(meta(shipped, "release_bundle")["bundle"]) / "v6" / "FlowGenerator1StepV6.mlpackage") == v6["FlowGenerator1StepV6"]
    rejudge = materialize(trained, [release.acceptance_report],
                          run_config={"ops": {"acceptance_report": {"config": {"packages_run_id": judged["packages_run_id"]}}}})
    assert rejudge.success and meta(rejudge, "acceptance_report")["packages_folder"] == judged["packages_folder"]
    weights = next((Path(judged["packages_folder"]) / "FlowGenerator1StepV6.mlpackage").rglob("weight.bin"))
    original = weights.read_bytes()
    weights.write_bytes(original[:-4] + b"\x00\x00\x00\x01")
    try:
        tampered = materialize(trained, [release.release_bundle])
        assert not tampered.success and "changed after the acceptance report" in failure(tampered) and "FlowGenerator1StepV6" in failure(tampered)
    finally:
        weights.write_bytes(original)


def latest_meta(instance, key) -> dict:
    return {k: v.value for k, v in instance.get_latest_materialization_event(dg.AssetKey(key)).asset_materialization.metadata.items()}


def test_a_reingested_track_keeps_the_file_its_split_named_and_a_rewritten_one_is_refused_by_name(trained):
    """Re-ingest under a queued training: it trains on what the split recorded; a file changed in place fails, naming the track."""
    instance, resources, *_ = trained
    store, root = resources["artifact_store"], Path(resources["capture_store"].root)
    split = DatasetSplit.load(Path(latest_meta(instance, "dataset_split")["split_path"]))
    track, donor = split.train[0], split.train[1]
    named = Path(split.pairs_paths[track])
    shutil.copy(root / donor / "audio.wav", root / track / "audio.wav")  # new music for the same session
    store.raw_record_path(track).unlink()  # the documented way to re-ingest new content
    assert dg.materialize(CAPTURE_ASSETS, partition_key=track, instance=instance, resources=resources).success
    assert store.pairs_path(track) != named and sha256_file(named) == split.pairs_sha256[track]
    queued = materialize(trained, [training.encoder_flow_v6])  # still the recorded split
    assert queued.success and meta(queued, "encoder_flow_v6")["dataset_fingerprint"] == split.fingerprint
    original = named.read_bytes()
    named.write_bytes(store.pairs_path(track).read_bytes())  # what rewriting pairs in place would do
    try:
        refused = materialize(trained, [training.encoder_flow_v6])
        assert not refused.success and f"track {track}:" in failure(refused) and "recorded" in failure(refused)
    finally:
        named.write_bytes(original)


def test_a_configured_v5_fallback_is_contract_checked_named_and_shipped_as_judged(trained, tmp_path, monkeypatch):
    instance = trained[0]
    exported = Path(latest_meta(instance, "coreml_packages")["folder"])
    v5 = tmp_path / "v5-on-the-phone"
    shutil.copytree(exported / "ConditioningEncoderV5.mlpackage", v5 / "ConditioningEncoderV5.mlpackage")
    monkeypatch.setenv("LUME_V5_FOLDER", str(v5))
    incomplete = materialize(trained, [release.smoke_test])
    assert incomplete.success and meta(incomplete, "smoke_test")["passed"] is False
    assert "FlowGenerator1StepV5.mlpackage: cannot be read" in meta(incomplete, "smoke_test")["result"]
    shutil.copytree(exported / "FlowGenerator1StepV5.mlpackage", v5 / "FlowGenerator1StepV5.mlpackage")
    shipped = materialize(trained, RELEASE_ASSETS[1:])
    assert shipped.success and meta(shipped, "smoke_test")["passed"] is True
    bundle = Path(meta(shipped, "release_bundle")["bundle"])
    fallback = json.loads((bundle / "manifest.json").read_text())["v5_fallback"]
    assert fallback["configured"] and fallback["folder"] == str(v5) and "LUME_V5_FOLDER" in fallback["source"]
    assert fallback["packages_sha256"] == {n: package_digest(bundle / "v5" / f"{n}.mlpackage") for n in ("ConditioningEncoderV5", "FlowGenerator1StepV5")}
    assert str(v5) in Path(meta(shipped, "acceptance_report")["report_html"]).read_text()
    (v5 / "FlowGenerator1StepV5.mlpackage" / "Manifest.json").write_text("{}")
    changed = materialize(trained, [release.release_bundle])
    assert not changed.success and "the V5 fallback" in failure(changed) and "FlowGenerator1StepV5" in failure(changed)


def test_retention_keeps_what_kept_bundles_and_latest_materializations_name_and_never_captures(trained):
    instance, resources, *_ = trained
    artifacts, captures = Path(resources["artifact_store"].root).resolve(), Path(resources["capture_store"].root)
    capture_sums = {p: sha256_file(p) for p in captures.rglob("*") if p.is_file()}
    bundles = retention._bundles(instance)
    report = Path(latest_meta(instance, "acceptance_report")["report_html"]).parent
    media = next((report / "listening").glob("*.wav"))
    assert media.stat().st_nlink == 2  # shared with the previews folder, not a copy
    plan = retention.plan(instance, artifacts, 1, captures)
    manifest = json.loads((bundles[0] / "manifest.json").read_text())
    named = [bundles[0], report, *(Path(m["run_dir"]) for m in manifest["models"].values()),
             artifacts / "release" / "packages" / manifest["run_ids"]["packages"]]
    assert plan.keep_bundles == [bundles[0].resolve()] and all(b.resolve() in plan.remove for b in bundles[1:])
    assert not [p for p in plan.remove for n in named if p == n.resolve() or p in n.resolve().parents]
    judged_first = Path(meta(trained[2], "coreml_packages")["folder"]).resolve()
    assert judged_first in plan.remove and plan.bytes_freed > 0 and all(p.exists() for p in plan.remove)  # a plan removes nothing
    assert retention.apply(plan) == plan.bytes_freed and not any(p.exists() for p in plan.remove)
    assert all(n.exists() for n in named) and media.exists()
    assert {p: sha256_file(p) for p in captures.rglob("*") if p.is_file()} == capture_sums
    judged = json.loads(Path(latest_meta(instance, "acceptance_report")["gates_json"]).read_text())
    assert all(package_digest(Path(judged["packages_folder"]) / f"{n}.mlpackage") == d for n, d in judged["packages_sha256"].items())
