"""PyTorch twin of the MLX SAN, for Core ML export: same layers, MLX weights loaded as-is.

Unlike the MLX model it takes raw units (dB latent, raw dynamics) and returns raw controls,
with the training statistics as buffers, because that is what the app feeds the package.
"""

import numpy as np
import torch
from mlx.utils import tree_flatten
from torch import nn

from lume_v6_dagster.dataset import Stats
from lume_v6_dagster.models.san import SANConfig


class SANTwin(nn.Module):
    def __init__(self, cfg: SANConfig):
        super().__init__()
        h1, h2 = cfg.hidden
        self.fc1 = nn.Linear(cfg.latent_dim + cfg.dynamics_dim, h1)
        self.fc2 = nn.Linear(h1, h2)
        self.out = nn.Linear(h2, cfg.out_dim)
        for name, dim in (("latent", cfg.latent_dim), ("dynamics", cfg.dynamics_dim), ("controls", cfg.out_dim)):
            self.register_buffer(f"{name}_mean", torch.zeros(dim))
            self.register_buffer(f"{name}_std", torch.ones(dim))

    def forward_normalized(self, latent, dynamics):  # (B, 64), (B, 128) -> (B, 16), as the MLX SAN
        h = nn.functional.silu(self.fc1(torch.cat([latent, dynamics], dim=1)))
        return self.out(nn.functional.silu(self.fc2(h)))

    def forward(self, music_latent, dynamics):  # raw units in and out
        lat = (music_latent - self.latent_mean) / self.latent_std
        dyn = (dynamics - self.dynamics_mean) / self.dynamics_std
        return self.forward_normalized(lat, dyn) * self.controls_std + self.controls_mean


def from_mlx(san, stats: Stats) -> SANTwin:
    """Copy an MLX SAN's weights (nn.Linear layouts match: weight (out, in)) and the statistics."""
    twin = SANTwin(san.cfg)
    state = {k: torch.from_numpy(np.array(v)) for k, v in tree_flatten(san.parameters())}
    for name in ("latent", "dynamics", "controls"):
        mean, std = stats.arrays(name)
        state[f"{name}_mean"], state[f"{name}_std"] = torch.from_numpy(mean), torch.from_numpy(std)
    twin.load_state_dict(state)
    return twin.eval()
