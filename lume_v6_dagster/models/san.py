"""SAN V6 in MLX: music latent[64] + dynamics[128] -> AudioEngine controls[16], ~135K parameters."""

from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from lume_v6_dagster import contract

TARGET_PARAMS = 135_000
TOLERANCE = 0.10


@dataclass
class SANConfig:
    latent_dim: int = contract.LATENT_DIM
    dynamics_dim: int = contract.DYNAMICS_DIM
    hidden: tuple[int, int] = (336, 192)
    out_dim: int = contract.CONTROLS_DIM


class SAN(nn.Module):
    """Inputs and outputs are normalised; statistics live beside the weights, not inside."""

    def __init__(self, cfg: SANConfig):
        super().__init__()
        self.cfg = cfg
        h1, h2 = cfg.hidden
        self.fc1 = nn.Linear(cfg.latent_dim + cfg.dynamics_dim, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.out = nn.Linear(h2, cfg.out_dim)

    def __call__(self, latent: mx.array, dynamics: mx.array) -> mx.array:  # (B, 64), (B, 128) -> (B, 16)
        h = nn.silu(self.fc1(mx.concatenate([latent, dynamics], axis=1)))
        return self.out(nn.silu(self.fc2(h)))

    def num_params(self) -> int:
        return sum(v.size for _, v in tree_flatten(self.trainable_parameters()))
