"""Load trained models back from their run folders (written by the training assets)."""

from pathlib import Path

import torch

from lume_v6_dagster.dataset import Stats
from lume_v6_dagster.models.flow import OneStepGenerator
from lume_v6_dagster.noise import NoiseProcess
from lume_v6_dagster.models.san import SAN, SANConfig
from lume_v6_dagster.models.san_twin import SANTwin, from_mlx
from lume_v6_dagster.training.flow_training import build_models


def load_encoder_flow(run_dir: Path, stats: Stats):
    """(encoder, one-step generator, the noise process it ships with), in eval mode, from `model.pt`."""
    state = torch.load(Path(run_dir) / "model.pt", map_location="cpu", weights_only=True)  # never unpickle code
    enc, flow = build_models(state["in_dim"], stats, seed=0)
    enc.load_state_dict(state["encoder"])
    flow.load_state_dict(state["flow"])
    return enc.eval(), OneStepGenerator(flow.eval()).eval(), NoiseProcess.from_dict(state.get("noise"))


def load_san(run_dir: Path, stats: Stats) -> tuple[SAN, SANTwin]:
    """(MLX SAN, its PyTorch twin with the statistics built in)."""
    san = SAN(SANConfig())
    san.load_weights(str(Path(run_dir) / "model.safetensors"))
    return san, from_mlx(san, stats)
