"""Tonight's V6 against the champion: a weaker model is refused, an unverifiable champion blocks, an override is recorded."""

import dataclasses
import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from lume_v6_dagster import contract, temporal
from lume_v6_dagster.acceptance import champion as ch
from lume_v6_dagster.acceptance import measure
from lume_v6_dagster.acceptance import signoff as so
from lume_v6_dagster.acceptance.thresholds import Thresholds
from lume_v6_dagster.checksums import sha256_file
from lume_v6_dagster.dataset import build_split, load_arrays
from lume_v6_dagster.models.flow import OneStepGenerator
from lume_v6_dagster.noise import NoiseProcess
from lume_v6_dagster.training.flow_training import build_models, train_flow
from lume_v6_dagster.training.profiles import get_profile

PROFILE = dataclasses.replace(get_profile("tiny"), flow_epochs=4, flow_steps_per_epoch=15, flow_batch=64, eval_samples=128)
SHIPPED = NoiseProcess.same(jump=0.05, rho=0.95)  # the champion's noise, saved in its model.pt
DIGESTS = {"ConditioningEncoderV6": "a" * 64, "FlowGenerator1StepV6": "b" * 64, "SANV6": "c" * 64}
TONIGHT = {**DIGESTS, "SANV6": "d" * 64}

# Figures that pass at the default thresholds; each threshold moved so that they must fail.
CHALLENGER = {"val_loss": 0.40, "fd_1step": 2.2, "sequence_fd": 3.3, "mode_accuracy": 0.95}
CHAMPION = {"val_loss": 0.39, "fd_1step": 2.0, "sequence_fd": 3.0, "mode_accuracy": 0.96}
FLIPS = {"champion_loss_regression_max": (0.02, 1), "champion_fd_regression_max": (0.05, 2), "champion_mode_accuracy_drop_max": (0.005, 1)}


@pytest.mark.parametrize("name", sorted(FLIPS))
def test_moving_a_champion_threshold_makes_the_same_figures_a_regression(name, tmp_path):
    assert ch.regressions(CHALLENGER, CHAMPION, Thresholds()) == []
    value, failed = FLIPS[name]
    (tmp_path / "thresholds.json").write_text(json.dumps({name: value}))
    assert len(ch.regressions(CHALLENGER, CHAMPION, Thresholds.load(tmp_path / "thresholds.json"))) == failed


def test_a_nan_figure_is_a_regression():
    assert ch.regressions({**CHALLENGER, "sequence_fd": float("nan")}, CHAMPION, Thresholds())
    assert ch.regressions({**CHALLENGER, "mode_accuracy": float("nan")}, CHAMPION, Thresholds())


def test_consecutive_windows_never_cross_a_track_or_a_dropout():
    t = np.concatenate([np.arange(10) / 30, np.arange(20, 30) / 30, np.arange(5) / 30])  # a dropout after 10 rows, then a second track
    track = np.array([0] * 20 + [1] * 5)
    w = temporal.consecutive_windows(t, track, 4, 100)
    assert len(w) == 7 + 7 + 2
    assert all(len(set(track[r])) == 1 and np.allclose(np.diff(t[r]), 1 / 30) for r in w)


@pytest.fixture(scope="module")
def trained(pairs_paths, tmp_path_factory):
    """A champion trained briefly on the simulated tracks, saved as the release recorded it."""
    split = build_split(pairs_paths)
    torch.set_num_threads(1)
    result = train_flow(load_arrays(split, split.train), load_arrays(split, split.val), split.stats, PROFILE, 0,
                        tmp_path_factory.mktemp("ckpt"), contract.CONDITIONING_DIM, log=lambda _: None)
    run_dir = tmp_path_factory.mktemp("champion")
    torch.save({"encoder": result.encoder.state_dict(), "flow": result.flow.state_dict(), "in_dim": contract.CONDITIONING_DIM,
                "noise": SHIPPED.as_dict()}, run_dir / "model.pt")
    manifest = {"status": "RELEASED", "packages_sha256": DIGESTS, "run_ids": {"encoder_flow_v6": "run-of-champion"},
                "models": {"encoder_flow_v6": {"run_dir": str(run_dir), "weights_sha256": sha256_file(run_dir / "model.pt")}},
                "tracks": {"train": split.train, "val": split.val}, "normalisation": asdict(split.stats)}
    train = load_arrays(split, split.train)
    classify = measure.mode_classifier(train["latent"], train["conditioning"][:, contract.MODE_SLICE].argmax(1))
    models = (result.encoder.eval(), OneStepGenerator(result.flow.eval()).eval(), SHIPPED)
    return split, ch.Champion("release-run", run_dir / "bundle", manifest), models, train["latent"], classify


def compare(trained, challenger, champion=None, override=None, th=Thresholds()):
    split, released, _, train_latent, classify = trained
    return ch.compare(challenger, released if champion is None else champion, split, train_latent, classify, th, override)


def test_an_untrained_challenger_is_refused_and_the_same_model_is_not(trained):
    split, _, models, *_ = trained
    enc, flow = build_models(contract.CONDITIONING_DIM, split.stats, seed=3)  # tonight's "retrain" learned nothing
    weaker = compare(trained, (enc.eval(), OneStepGenerator(flow.eval()).eval(), SHIPPED))
    assert weaker.state == "regressed" and weaker.blocks
    assert weaker.tracks == split.val and any("validation loss" in r for r in weaker.regressions)
    assert weaker.metrics["challenger"]["val_loss"] > weaker.metrics["champion"]["val_loss"]
    same = compare(trained, models)
    assert same.state == "no worse" and not same.blocks and same.metrics["challenger"] == same.metrics["champion"]


def test_each_model_is_measured_with_the_noise_it_ships_with(trained):
    """The same weights fed fresh noise every frame flicker: their sequence FD regresses against the champion's own process."""
    enc, gen, _ = trained[2]
    flickering = compare(trained, (enc, gen, NoiseProcess.same()))
    assert flickering.metrics["challenger"]["sequence_fd"] > flickering.metrics["champion"]["sequence_fd"] * 1.15
    assert flickering.state == "regressed" and any("sequence FD" in r for r in flickering.regressions)


def test_no_champion_or_no_shared_track_does_not_decide(trained):
    split, released, models, train_latent, classify = trained
    first = ch.compare(models, None, split, train_latent, classify, Thresholds(), None)
    assert first.state == "none" and not first.blocks and "first release" in first.reason
    saw_all = ch.Champion("r", released.bundle, {**released.manifest, "tracks": {"train": split.train + split.val}})
    unshared = compare(trained, models, champion=saw_all)
    assert unshared.state == "no shared tracks" and not unshared.blocks and "does not decide" in unshared.reason


def test_a_champion_whose_weights_changed_blocks_until_a_person_overrides(trained, tmp_path):
    split, released, models, *_ = trained
    tampered = dataclasses.replace(released, manifest={**released.manifest, "models": {"encoder_flow_v6": {
        **released.manifest["models"]["encoder_flow_v6"], "weights_sha256": "0" * 64}}})
    blocked = compare(trained, models, champion=tampered)
    assert blocked.state == "unverifiable" and blocked.blocks and "not the 000000000000" in blocked.reason
    record = so.make_record(so.OVERRIDE, "A. Lead", ["promote=pass"], "report-run", TONIGHT, "champion's run folder was restored by hand",
                            now=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc))
    promoted = compare(trained, models, champion=tampered, override=record)
    assert promoted.state == "overridden" and not promoted.blocks and "promoted anyway by A. Lead" in promoted.reason


def test_the_champion_is_the_newest_released_bundle_of_other_packages(tmp_path):
    bundles = [("r3", tmp_path / "b3", {"status": "NOT RELEASED", "packages_sha256": DIGESTS}),
               ("r2", tmp_path / "b2", {"status": "RELEASED", "packages_sha256": TONIGHT}),  # tonight's own, judged again
               ("r1", tmp_path / "b1", {"status": "FULLY SHIPPED", "packages_sha256": DIGESTS})]
    assert ch.newest(bundles, TONIGHT).release_run_id == "r1"
    assert ch.newest(bundles[:2], TONIGHT) is None


def test_a_champion_that_no_longer_loads_into_this_code_blocks_with_the_reason(trained, tmp_path):
    split, released, models, *_ = trained
    state = torch.load(Path(released.manifest["models"]["encoder_flow_v6"]["run_dir"]) / "model.pt", weights_only=True)
    state["flow"] = {k: v for k, v in state["flow"].items() if not k.endswith(".bias")}  # as if the model code had changed shape
    torch.save(state, tmp_path / "model.pt")
    older = dataclasses.replace(released, manifest={**released.manifest, "models": {"encoder_flow_v6": {
        "run_dir": str(tmp_path), "weights_sha256": sha256_file(tmp_path / "model.pt"), "code_version": "0ldc0de0ldc0"}}})
    blocked = compare(trained, models, champion=older)
    assert blocked.state == "unverifiable" and blocked.blocks and "model code 0ldc0de0ldc0" in blocked.reason
