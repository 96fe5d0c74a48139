"""ConditioningEncoder: body state + mode + emotion -> 768-D embedding (141 -> 256 -> 512 -> 768)."""

from dataclasses import dataclass

import torch
from torch import nn

from lume_v6_dagster import contract


@dataclass
class EncoderConfig:
    in_dim: int = contract.CONDITIONING_DIM  # 141 for V6; 64 for the V5 recipe
    hidden: tuple[int, int] = (256, 512)
    out_dim: int = contract.EMBEDDING_DIM
    n_dynamics: int = contract.DYNAMICS_DIM  # leading dims that are body dynamics (normalised inside)


class ConditioningEncoder(nn.Module):
    """Takes raw conditioning, as the app sends it: normalisation statistics are buffers."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("dyn_mean", torch.zeros(cfg.n_dynamics))
        self.register_buffer("dyn_std", torch.ones(cfg.n_dynamics))
        h1, h2 = cfg.hidden
        self.net = nn.Sequential(nn.Linear(cfg.in_dim, h1), nn.SiLU(), nn.Linear(h1, h2), nn.SiLU(), nn.Linear(h2, cfg.out_dim))

    def forward(self, c: torch.Tensor) -> torch.Tensor:  # (B, in_dim) -> (B, 768)
        n = self.cfg.n_dynamics
        dyn = (c[:, :n] - self.dyn_mean) / self.dyn_std
        return self.net(torch.cat([dyn, c[:, n:]], dim=1))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
