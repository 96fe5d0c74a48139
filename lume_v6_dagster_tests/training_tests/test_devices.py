"""Every model trains, validates and samples off the CPU, and the host sets up each device validly.

PyTorch's `meta` device holds no data but, like CUDA and MPS, refuses to mix devices
("Tensor on device cpu is not on the expected device meta!"): a tensor made on the CPU and
fed to a model on another device fails here, in CI, without a GPU.
"""

import os

import numpy as np
import pytest
import torch

from lume_v6_dagster import contract
from lume_v6_dagster.dataset import Stats
from lume_v6_dagster.models.flow import OneStepGenerator
from lume_v6_dagster.models.san import SAN, SANConfig
from lume_v6_dagster.models.san_twin import from_mlx
from lume_v6_dagster.resources import TrainingHost
from lume_v6_dagster.training.flow_training import build_models, train_step, validation_loss

META = torch.device("meta")
MODELS = {"v6": contract.CONDITIONING_DIM, "v5": contract.V5_DYNAMICS_DIM}


def stats() -> Stats:
    ones = lambda n: [1.0] * n  # noqa: E731
    return Stats([0.0] * 128, ones(128), [-40.0] * 64, ones(64), [0.0] * 16, ones(16), 100)


def on_meta(in_dim):
    enc, flow = build_models(in_dim, stats(), seed=0)
    return enc.to(META), flow.to(META)


@pytest.mark.parametrize("name", MODELS)
def test_training_step_runs_on_another_device(name):
    enc, flow = on_meta(MODELS[name])
    params = list(enc.parameters()) + list(flow.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    c, x = torch.randn(16, MODELS[name]).to(META), torch.randn(16, contract.LATENT_DIM).to(META)
    loss = train_step(enc, flow, opt, params, c, x, torch.Generator().manual_seed(0))  # forward, JVP, backward, step
    assert loss.device == META and loss.shape == ()


@pytest.mark.parametrize("name", MODELS)
def test_validation_loss_runs_on_another_device(name):
    enc, flow = on_meta(MODELS[name])
    c, x = torch.randn(16, MODELS[name]).to(META), torch.randn(16, contract.LATENT_DIM).to(META)
    assert validation_loss(enc, flow, c, x).device == META


@pytest.mark.parametrize("steps", [1, 16])
def test_sampling_runs_on_another_device(steps):
    enc, flow = on_meta(contract.CONDITIONING_DIM)
    e = enc(torch.randn(8, contract.CONDITIONING_DIM).to(META))
    noise = torch.randn(8, contract.NOISE_DIM).to(META)
    assert flow.sample(e, noise, steps=steps).shape == (8, contract.LATENT_DIM)
    one_step = OneStepGenerator(flow).to(META)
    assert one_step(e[:1], noise[:1]).device == META and one_step.batched(e, noise).device == META


def test_san_twin_runs_on_another_device():
    s = stats()
    twin = from_mlx(SAN(SANConfig()), s).to(META)
    out = twin(torch.randn(4, contract.LATENT_DIM).to(META), torch.randn(4, contract.DYNAMICS_DIM).to(META))
    assert out.shape == (4, contract.CONTROLS_DIM) and out.device == META


@pytest.fixture
def restore_determinism(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    yield
    torch.use_deterministic_algorithms(True)


def test_cuda_setup_fixes_the_cublas_workspace_before_deterministic_kernels(restore_determinism):
    guarantee = TrainingHost(device="cuda", threads=1).setup()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled() and not torch.is_deterministic_algorithms_warn_only_enabled()
    assert "same GPU" in guarantee


def test_mps_setup_warns_instead_of_failing_on_ops_without_a_deterministic_kernel(restore_determinism):
    guarantee = TrainingHost(device="mps", threads=1).setup()
    assert torch.is_deterministic_algorithms_warn_only_enabled() and "best effort" in guarantee
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_cpu_setup_is_strict_and_bitwise(restore_determinism):
    guarantee = TrainingHost(device="cpu", threads=1).setup()
    assert not torch.is_deterministic_algorithms_warn_only_enabled() and guarantee.startswith("bitwise")


def test_checkpoints_and_models_refuse_pickled_code(tmp_path):
    """An artifact folder must not be able to run code: only tensors and plain values load."""
    from lume_v6_dagster.trained_models import load_encoder_flow
    from lume_v6_dagster.training import checkpoints

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "ckpt").mkdir()
    torch.save({"encoder": Payload()}, tmp_path / "ckpt" / "epoch_0001.pt")
    torch.save({"encoder": Payload()}, tmp_path / "model.pt")
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        checkpoints.latest(tmp_path / "ckpt")
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        load_encoder_flow(tmp_path, stats())
    assert not marker.exists()
