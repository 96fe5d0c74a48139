"""SAN V6 in MLX: size, learning, determinism, resume, the change term."""

import dataclasses

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from lume_v6_dagster.dataset import build_split, load_arrays
from lume_v6_dagster.models.san import SAN, TARGET_PARAMS, TOLERANCE, SANConfig
from lume_v6_dagster.training.profiles import get_profile
from lume_v6_dagster.training.san_training import train_san

PROFILE = dataclasses.replace(get_profile("tiny"), san_epochs=4, san_batch=128)


@pytest.fixture(scope="module")
def data(pairs_paths):
    split = build_split(pairs_paths)
    return load_arrays(split, split.train), load_arrays(split, split.val), split.stats


def weights(model) -> dict:
    return {k: np.array(v) for k, v in tree_flatten(model.parameters())}


def test_parameter_count_is_135k_within_ten_percent():
    n = SAN(SANConfig()).num_params()
    assert abs(n - TARGET_PARAMS) <= TOLERANCE * TARGET_PARAMS, n


def test_training_lowers_validation_loss(data, tmp_path):
    result = train_san(*data, PROFILE, seed=0, ckpt_dir=tmp_path)
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    assert result.history[-1]["val_loss"] < 1.0  # better than predicting the training mean


def test_seeded_runs_give_identical_weights(data, tmp_path):
    a = weights(train_san(*data, PROFILE, seed=3, ckpt_dir=tmp_path / "a").model)
    b = weights(train_san(*data, PROFILE, seed=3, ckpt_dir=tmp_path / "b").model)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_gives_identical_weights(data, tmp_path):
    full = weights(train_san(*data, PROFILE, seed=1, ckpt_dir=tmp_path / "full").model)
    train_san(*data, dataclasses.replace(PROFILE, san_epochs=2), seed=1, ckpt_dir=tmp_path / "cut")  # stopped after epoch 2
    logs = []
    resumed = weights(train_san(*data, PROFILE, seed=1, ckpt_dir=tmp_path / "cut", log=logs.append).model)
    assert logs[0] == "resumed from epoch 2"
    assert all(np.array_equal(full[k], resumed[k]) for k in full)


def test_a_share_of_each_batch_trains_with_the_body_at_its_mean(data, tmp_path, monkeypatch):
    """On real music SAN fit each session's motion (validation 0.69 against training 0.12) until 30% of each batch had
    its body held at the training mean (normalised 0): the controls are learnt from the music first."""
    from lume_v6_dagster.training import san_training

    rng = np.random.default_rng(0)
    dyn = rng.standard_normal((10_000, 128)).astype(np.float32)
    held = san_training.hold_bodies(dyn, np.random.default_rng(1))
    zero = (held == 0).all(1)
    assert abs(zero.mean() - san_training.BODY_HELD) < 0.02 and np.array_equal(held[~zero], dyn[~zero])
    assert np.array_equal(held, san_training.hold_bodies(dyn, np.random.default_rng(1)))  # seeded: the same rows
    shares, real = [], san_training.hold_bodies

    def counted(batch, batch_rng):
        out = real(batch, batch_rng)
        shares.append((out == 0).all(1).mean())
        return out

    monkeypatch.setattr(san_training, "hold_bodies", counted)
    train_san(*data, PROFILE, seed=0, ckpt_dir=tmp_path)
    assert shares and abs(np.mean(shares) - san_training.BODY_HELD) < 0.05, shares


def test_the_change_term_tells_a_flickering_san_from_a_steady_one():
    """Fed one frame at a time, SAN's errors on consecutive frames were independent, and its loudness flickered (4.3 x
    the real control's change in Sky Garden, on the real music itself). Two predictions with the same frame error, one
    whose error flips sign every frame and one whose error holds: the frame loss cannot tell them apart, the change
    term can."""
    from lume_v6_dagster.training import san_training

    y = mx.array(np.linspace(0, 1, 32 * 16, dtype=np.float32).reshape(32, 16))
    flips, holds = (mx.array(np.float32(0.5) * np.array(s, dtype=np.float32)[:, None] * np.ones((32, 16), np.float32))
                    for s in ([(-1) ** i for i in range(32)], [1] * 32))
    losses = {}
    for name, err in (("flips", flips), ("holds", holds)):
        model = lambda lat, dyn: lat  # noqa: E731: "predicts" what it is fed: y plus the error
        now, after = y[:-1] + err[:-1], y[1:] + err[1:]
        frames = san_training._loss(model, now, None, y[:-1])[0].item()
        changes = san_training._change_loss(model, now, None, y[:-1], after, None, y[1:], 1.0)
        assert changes[1].item() == pytest.approx(frames)  # the frame MSE, reported as the training loss
        losses[name] = (frames, changes[0].item())
    assert losses["flips"][0] == pytest.approx(losses["holds"][0])
    assert losses["flips"][1] > losses["holds"][1] + 0.9  # a change error of 1 on every row


def test_san_learns_the_controls_change_from_frame_to_frame(data, tmp_path):
    """By default SAN also fits each row's change to its next frame: on the validation tracks its predicted change
    is closer to the real controls' than on frames alone (tiny profile: 0.29 against 0.31)."""
    from lume_v6_dagster.training.san_training import CHANGE_WEIGHT, san_inputs

    train, val, stats = data
    lat, dyn, y = san_inputs(val, stats)
    follows = np.diff(val["track"]) == 0

    def change_error(weight: float) -> float:
        model = train_san(train, val, stats, PROFILE, seed=0, ckpt_dir=tmp_path / str(weight), change_weight=weight).model
        pred = np.array(model(mx.array(lat), mx.array(dyn)))
        return float(((np.diff(pred, axis=0) - np.diff(y, axis=0))[follows] ** 2).mean())

    assert CHANGE_WEIGHT > 0
    assert change_error(CHANGE_WEIGHT) < 0.97 * change_error(0.0)
