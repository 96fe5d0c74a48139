"""Encoder + one-step flow: learning, determinism, and resume after SIGKILL."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from lume_v6_dagster import contract, noise
from lume_v6_dagster.dataset import build_split, load_arrays
from lume_v6_dagster.models.flow import frames_db, one_step_for_rows
from lume_v6_dagster.training.flow_training import evaluation_pool, fit_noise, train_flow
from lume_v6_dagster.training.profiles import get_profile

PROFILE = dataclasses.replace(get_profile("tiny"), flow_epochs=6, flow_steps_per_epoch=15, flow_batch=64, eval_samples=128)


def data(pairs_paths):
    split = build_split(pairs_paths)
    return load_arrays(split, split.train), load_arrays(split, split.val), split.stats


def run(pairs_paths, ckpt, seed=0, profile=PROFILE, log=print, overlap=False):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    return train_flow(*data(pairs_paths), profile, seed, ckpt, contract.CONDITIONING_DIM, log=log, overlap=overlap)


def same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference(pairs_paths, tmp_path_factory):
    return run(pairs_paths, tmp_path_factory.mktemp("ref"))


def test_short_run_lowers_validation_loss_and_reports_one_vs_multi_step(reference):
    h = reference.history
    assert h[-1]["val_loss"] < h[0]["val_loss"]
    assert {"fd_1step", "fd_16step"} <= reference.metrics.keys()
    assert reference.metrics["encoder_params"] == 141 * 256 + 256 + 256 * 512 + 512 + 512 * 768 + 768


def test_seeded_runs_give_identical_weights_and_figures_with_or_without_the_helper_threads(pairs_paths, reference, tmp_path):
    again = run(pairs_paths, tmp_path, overlap=True)  # the JVP and the teacher beside the gradients, the FD resamples on every core
    assert same(reference.encoder.state_dict(), again.encoder.state_dict())
    assert same(reference.flow.state_dict(), again.flow.state_dict())
    assert again.metrics == reference.metrics


def test_the_noise_fit_scores_the_same_grid_on_any_count_of_threads(pairs_paths, reference):
    train = data(pairs_paths)[0]
    alone = fit_noise(reference.encoder, reference.flow, train, windows=2)
    with evaluation_pool(True, "cpu") as pool:
        spread = fit_noise(reference.encoder, reference.flow, train, windows=2, pool=pool)
    assert spread == alone and len(alone[1]) > len(noise.JUMP_GRID)


def test_the_fits_one_step_with_its_modulation_computed_once_gives_the_frames_of_the_plain_step(pairs_paths, reference):
    conditioning = data(pairs_paths)[1]["conditioning"][:500]
    frames = one_step_for_rows(reference.encoder, reference.flow, conditioning)
    for seed in range(2):  # every draw through the same rows reads the same modulation
        z = np.random.default_rng(seed).standard_normal((500, contract.NOISE_DIM)).astype(np.float32)
        assert np.array_equal(frames(z), frames_db(reference.encoder, reference.flow, conditioning, z))


WORKER = """
import sys, torch
from pathlib import Path
from lume_v6_dagster_tests.training_tests.test_flow_training import run
paths = {p.parent.name: p for p in Path(sys.argv[1]).glob('*/pairs.npz')}
run(paths, Path(sys.argv[2]))
"""


def test_sigkill_mid_training_then_resume_gives_identical_weights(pairs_paths, reference, tmp_path):
    pairs_dir = next(iter(pairs_paths.values())).parent.parent
    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(pairs_dir), str(ckpt)], env={**os.environ, "PYTHONPATH": os.getcwd()})
    deadline = time.time() + 300
    while not (ckpt / "epoch_0002.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "worker ended before its second checkpoint"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (ckpt / f"epoch_{PROFILE.flow_epochs:04d}.pt").exists(), "killed too late to test resume"
    logs = []
    resumed = run(pairs_paths, ckpt, log=logs.append)
    assert logs[0].startswith("resumed from epoch")
    assert same(reference.encoder.state_dict(), resumed.encoder.state_dict())
    assert same(reference.flow.state_dict(), resumed.flow.state_dict())


def test_body_swap_moves_dynamics_only():
    from lume_v6_dagster.training.flow_training import Recipe, swap_bodies

    c = torch.randn(2000, contract.CONDITIONING_DIM)
    out = swap_bodies(c, torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 128:], c[:, 128:])  # mode and emotion stay with their target
    changed = (out[:, :128] != c[:, :128]).any(1).float().mean().item()
    assert abs(changed - Recipe().body_swap) < 0.05


class Oracle(torch.nn.Module):
    """The exact average velocity when all data sit at x0: u(z, r, t) = (z - x0) / t, for every r."""

    def __init__(self, x0):
        super().__init__()
        self.x0 = x0

    def velocity(self, z, r, t, e):
        return (z - self.x0) / t[:, None]


def test_meanflow_target_is_exact_for_the_true_average_velocity():
    """With the JVP tangent (v, 0, 1) over (z, r, t), the exact model has zero loss; a wrong tangent would not."""
    from lume_v6_dagster.training.flow_training import Recipe, meanflow_loss

    x0 = torch.randn(1, contract.LATENT_DIM)
    x = x0.expand(256, -1)
    c = torch.zeros(256, contract.CONDITIONING_DIM)
    recipe = Recipe(interval_fraction=1.0, jump_fraction=0.2, distill_weight=0.0)
    loss = meanflow_loss(lambda c: c, Oracle(x0), c, x, torch.Generator().manual_seed(0), recipe)
    assert loss.item() < 1e-6


def test_time_sampler_shares_and_order():
    from lume_v6_dagster.training.flow_training import Recipe, sample_times

    recipe = Recipe(interval_fraction=0.5, jump_fraction=0.2)
    r, t = sample_times(20_000, torch.Generator().manual_seed(0), recipe)
    assert bool((r <= t).all()) and bool(((r >= 0) & (t <= 1)).all())
    jump = (r == 0) & (t == 1)
    assert abs(jump.float().mean().item() - 0.2) < 0.02
    assert abs((r[~jump] != t[~jump]).float().mean().item() - 0.5) < 0.02
    r, t = sample_times(1000, torch.Generator().manual_seed(0), recipe, meanflow=False)  # warm-up: flow matching only
    assert torch.equal(r, t)


def test_checkpoints_of_another_recipe_are_refused_not_mixed(pairs_paths, reference, tmp_path):
    from lume_v6_dagster.training.flow_training import Recipe

    cut = dataclasses.replace(PROFILE, flow_epochs=1)
    train, val, stats = data(pairs_paths)
    train_flow(train, val, stats, cut, 0, tmp_path, contract.CONDITIONING_DIM, log=lambda _: None)
    with pytest.raises(ValueError, match="another training recipe"):
        train_flow(train, val, stats, PROFILE, 0, tmp_path, contract.CONDITIONING_DIM, recipe=Recipe(jump_fraction=0.5))


def test_sample_quality_reports_intervals_and_every_mode(reference):
    m = reference.metrics
    for k in ("fd_1step", "fd_16step"):
        assert m[f"{k}_lo"] <= m[k] * 1.5 and m[f"{k}_hi"] >= m[f"{k}_lo"]
    assert m["fd_ratio"] == pytest.approx(m["fd_1step"] / m["fd_16step"])
    assert m["fd_samples"] == PROFILE.eval_samples


def test_meanflow_loss_and_gradients_match_the_full_batch_jvp():
    """The JVP skips rows with r = t; loss and gradients must equal the textbook full-batch form."""
    from lume_v6_dagster.models.encoder import ConditioningEncoder, EncoderConfig
    from lume_v6_dagster.models.flow import FlowConfig, FlowGenerator
    from lume_v6_dagster.training.flow_training import Recipe, meanflow_loss, sample_times

    torch.manual_seed(0)
    enc, flow = ConditioningEncoder(EncoderConfig()), FlowGenerator(FlowConfig())
    for p in flow.parameters():  # adaLN starts at zero, which would hide the time inputs
        torch.nn.init.normal_(p, std=0.05)
    c, x = torch.randn(256, contract.CONDITIONING_DIM), torch.randn(256, contract.LATENT_DIM)
    recipe = Recipe(distill_weight=0.0)

    def reference():
        gen = torch.Generator().manual_seed(1)
        noise = torch.randn(x.shape, generator=gen)
        r, t = sample_times(len(x), gen, recipe)
        torch.rand(len(x), generator=gen)  # the condition-dropout draw
        e, z, v = enc(c), (1 - t)[:, None] * x + t[:, None] * noise, noise - x
        u, dudt = torch.func.jvp(lambda z, r, t: flow.velocity(z, r, t, e), (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
        err = ((u - (v - (t - r)[:, None] * dudt).detach()) ** 2).mean(1)
        assert 0.15 < (r < t).float().mean() < 0.35  # a mixed batch: both kinds of rows are tested
        return (err / (err.detach() + 1e-3)).mean()

    params = list(enc.parameters()) + list(flow.parameters())
    expected = reference()
    expected_grads = torch.autograd.grad(expected, params)
    loss = meanflow_loss(enc, flow, c, x, torch.Generator().manual_seed(1), recipe)
    grads = torch.autograd.grad(loss, params)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    for g, want in zip(grads, expected_grads):
        torch.testing.assert_close(g, want, rtol=1e-4, atol=1e-6)


def test_next_rows_stop_at_a_track_change_and_a_dropout_gap():
    from lume_v6_dagster.temporal import next_rows

    t = torch.cat([torch.arange(4) / 30, torch.arange(3) / 30, 10 + torch.arange(2) / 30]).numpy()
    track = torch.tensor([0] * 4 + [1] * 5).numpy()
    assert next_rows(t, track).tolist() == [1, 2, 3, -1, 5, 6, -1, 8, -1]


class _Echo(torch.nn.Module):
    """A generator whose frame is its embedding (noise ignored), or its noise (embedding ignored)."""

    def __init__(self, noise: bool):
        super().__init__()
        self.noise = noise

    def sample(self, e, z, steps=1):
        return z if self.noise else e

    def denormalize(self, z):
        return z


def test_the_consecutive_frame_term_is_zero_only_when_frames_move_as_the_music_does():
    from lume_v6_dagster.training.flow_training import _temporal_error

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2048, contract.LATENT_DIM, generator=gen)
    x_next = x + 0.1 * torch.randn(x.shape, generator=gen)  # the music changes by 0.1 x sqrt(2 / pi) per band
    assert _temporal_error(_Echo(noise=False), x, x_next, x, x_next, gen, 0.9)[0] < 1e-6
    # AR(1) noise of rho 0.9 changes by sqrt(2 (1 - 0.9)) x sqrt(2 / pi) per band: a log ratio of log(sqrt(20)) = 1.50
    assert _temporal_error(_Echo(noise=True), x, x_next, x, x_next, gen, 0.9)[0] == pytest.approx(1.50 ** 2, rel=0.05)
    assert _temporal_error(_Echo(noise=True), x, x_next, x, x_next, gen, 0.995)[0] < 0.01  # sqrt(2 x 0.005) = 0.1, as the music


def test_the_level_term_sees_loud_bands_moving_together_where_the_band_term_does_not():
    from lume_v6_dagster.training.flow_training import _temporal_error

    gen = torch.Generator().manual_seed(0)
    x = 10 * torch.randn(2048, contract.LATENT_DIM, generator=gen)  # dB frames, bands 10 dB apart on average
    step = torch.randn(x.shape, generator=gen)
    together = step[:, :1].expand_as(x)  # every band up or down by the same amount: the level moves by that much
    assert _temporal_error(_Echo(noise=False), x, x + step, x, x + step, gen, 1.0)[1] < 1e-6
    bands, level = _temporal_error(_Echo(noise=False), x, x + together, x, x + step, gen, 1.0)
    assert bands < 1e-2  # each band changes as much as the music's
    assert level > 0.5  # but the level, summed over independent bands, moves less in the music
