"""Encoder + one-step flow: learning, determinism, and resume after SIGKILL."""

import dataclasses
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lume_v6_dagster import contract
from lume_v6_dagster.dataset import build_split, load_arrays
from lume_v6_dagster.training.flow_training import train_flow
from lume_v6_dagster.training.profiles import get_profile

PROFILE = dataclasses.replace(get_profile("tiny"), flow_epochs=6, flow_steps_per_epoch=15, flow_batch=64, eval_samples=128)


def data(pairs_paths):
    split = build_split(pairs_paths)
    return load_arrays(pairs_paths, split.train), load_arrays(pairs_paths, split.val), split.stats


def run(pairs_paths, ckpt, seed=0, profile=PROFILE, log=print):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    return train_flow(*data(pairs_paths), profile, seed, ckpt, contract.CONDITIONING_DIM, log=log)


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


def test_seeded_runs_give_identical_weights(pairs_paths, reference, tmp_path):
    again = run(pairs_paths, tmp_path)
    assert same(reference.encoder.state_dict(), again.encoder.state_dict())
    assert same(reference.flow.state_dict(), again.flow.state_dict())


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
    from lume_v6_dagster.training.flow_training import BODY_SWAP_FRACTION, swap_bodies

    c = torch.randn(2000, contract.CONDITIONING_DIM)
    out = swap_bodies(c, torch.Generator().manual_seed(0))
    assert torch.equal(out[:, 128:], c[:, 128:])  # mode and emotion stay with their target
    changed = (out[:, :128] != c[:, :128]).any(1).float().mean().item()
    assert abs(changed - BODY_SWAP_FRACTION) < 0.05
