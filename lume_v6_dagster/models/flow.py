"""FlowGenerator: an average-velocity (MeanFlow) network, so one evaluation is one good step.

u(z_t, r, t | e) is the average velocity from time r to t on the path z_t = (1 - t) x + t noise;
a sample is x = noise - u(noise, 0, 1 | e). The embedding e modulates every block (adaLN), so
mode and emotion cannot be drowned out by the body dynamics.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lume_v6_dagster import contract


@dataclass
class FlowConfig:
    latent_dim: int = contract.LATENT_DIM
    cond_dim: int = contract.EMBEDDING_DIM
    width: int = 256
    n_blocks: int = 3
    time_features: int = 16


def time_embedding(x: torch.Tensor, n: int) -> torch.Tensor:
    """(B,) -> (B, n) sinusoidal features."""
    freqs = torch.exp(torch.arange(n // 2, dtype=x.dtype, device=x.device) * (-math.log(1000.0) / (n // 2)))
    angles = 1000.0 * x[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class AdaLNBlock(nn.Module):
    def __init__(self, width: int, cond: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.mod = nn.Linear(cond, 3 * width)  # shift, scale, gate
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width))

    def forward(self, h, modulation):  # h (B, W), modulation = self.mod(c) (B, 3W)
        shift, scale, gate = modulation.chunk(3, dim=1)
        return h + gate * self.mlp(self.norm(h) * (1 + scale) + shift)


class FlowGenerator(nn.Module):
    def __init__(self, cfg: FlowConfig):
        super().__init__()
        self.cfg = cfg
        cond = cfg.cond_dim + 2 * cfg.time_features
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_dim))
        self.register_buffer("latent_std", torch.ones(cfg.latent_dim))
        self.cond = nn.Sequential(nn.Linear(cond, cfg.width), nn.SiLU())
        self.inp = nn.Linear(cfg.latent_dim, cfg.width)
        self.blocks = nn.ModuleList(AdaLNBlock(cfg.width, cfg.width) for _ in range(cfg.n_blocks))
        self.out_norm = nn.LayerNorm(cfg.width)
        self.out = nn.Linear(cfg.width, cfg.latent_dim)

    def modulation(self, r, t, e) -> list[torch.Tensor]:
        """What each block reads from the embedding and the times: free of z, so many noise draws can share it."""
        n = self.cfg.time_features
        c = self.cond(torch.cat([e, time_embedding(t, n), time_embedding(t - r, n)], dim=1))
        return [block.mod(c) for block in self.blocks]

    def velocity(self, z, r, t, e, modulation: list[torch.Tensor] | None = None):
        """Average velocity u(z, r, t | e) in normalised latent units. z (B, 64), r/t (B,), e (B, 768);
        `modulation`: `self.modulation(r, t, e)`, computed once for the same rows and times."""
        h = self.inp(z)
        for block, m in zip(self.blocks, self.modulation(r, t, e) if modulation is None else modulation):
            h = block(h, m)
        return self.out(self.out_norm(h))

    def sample(self, e, noise, steps: int = 1):
        """Normalised latent from noise in `steps` equal average-velocity steps (1 = one evaluation)."""
        z = noise
        for k in range(steps, 0, -1):
            t = torch.full((len(z),), k / steps, dtype=z.dtype, device=z.device)
            r = torch.full((len(z),), (k - 1) / steps, dtype=z.dtype, device=z.device)
            z = z - (t - r)[:, None] * self.velocity(z, r, t, e)
        return z

    def denormalize(self, z):
        return z * self.latent_std + self.latent_mean

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class OneStepGenerator(nn.Module):
    """The shipped FlowGenerator1Step: (embedding, noise) -> music latent in dB, one evaluation.

    r = 0 and t = 1 are constant buffers of batch 1 (no shape-derived ops, for Core ML).
    """

    def __init__(self, flow: FlowGenerator):
        super().__init__()
        self.flow = flow
        self.register_buffer("r", torch.zeros(1))
        self.register_buffer("t", torch.ones(1))

    def forward(self, embedding, noise):  # (1, 768), (1, 64) -> (1, 64)
        return self.flow.denormalize(noise - self.flow.velocity(noise, self.r, self.t, embedding))

    def batched(self, embedding, noise):  # (B, 768), (B, 64) -> (B, 64): the same step, any batch
        return self.flow.denormalize(self.flow.sample(embedding, noise, steps=1))


@torch.no_grad()
def frames_db(encoder: nn.Module, flow: FlowGenerator, conditioning: np.ndarray, noise: np.ndarray, steps: int = 1) -> np.ndarray:
    """dB latents of many frames at once: the app's batch-1 step, batched (`steps` > 1: the multi-step sampler).

    The one generation that training (fitting the noise process) and acceptance (frames over time) share.
    """
    return flow.denormalize(flow.sample(_embedding(encoder, conditioning), torch.from_numpy(noise), steps=steps)).numpy()


def _embedding(encoder: nn.Module, conditioning: np.ndarray) -> torch.Tensor:
    """The encoder's embedding of recorded conditioning rows (141 wide; the V5 recipe reads its first 64)."""
    return encoder(torch.from_numpy(np.ascontiguousarray(conditioning[:, : encoder.cfg.in_dim])))


@torch.no_grad()
def one_step_for_rows(encoder: nn.Module, flow: FlowGenerator, conditioning: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """`frames_db`'s one step for these rows as a function of the noise, the noise-free part computed once
    (batched; `listening.one_step_frames` calls the packages' batch-1 step frame by frame).

    The encoder and the blocks' modulation are about 60% of a step's work; the noise fit draws 34
    processes through the same rows. Each call gives exactly what `frames_db` gives for the same noise.
    """
    e = _embedding(encoder, conditioning)
    r, t = torch.zeros(len(e)), torch.ones(len(e))
    modulation = flow.modulation(r, t, e)

    @torch.no_grad()
    def frames(noise: np.ndarray) -> np.ndarray:
        z = torch.from_numpy(noise)
        return flow.denormalize(z - flow.velocity(z, r, t, e, modulation)).numpy()
    return frames
