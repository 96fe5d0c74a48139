"""Joint training of ConditioningEncoder + FlowGenerator with the MeanFlow objective.

MeanFlow learns the average velocity u(z_t, r, t) over an interval, using the identity
u = v - (t - r) du/dt (du/dt by a forward-mode JVP), so a single evaluation from noise
lands on a sample. Plain flow matching sampled in one Euler step would collapse to the
conditional mean; the 1-step vs 16-step Frechet distances measure that this does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lume_v6_dagster import contract
from lume_v6_dagster.dataset import Stats
from lume_v6_dagster.models.encoder import ConditioningEncoder, EncoderConfig
from lume_v6_dagster.models.flow import FlowConfig, FlowGenerator
from lume_v6_dagster.training import checkpoints
from lume_v6_dagster.training.metrics import frechet_distance
from lume_v6_dagster.training.profiles import Profile

EQUAL_TR_FRACTION = 0.75  # share of (r, t) pairs with r = t: the flow-matching special case
# Body style reveals the mode, so a model can learn "mode" from the body and ignore the
# one-hot. Giving this share of each batch another row's body forces the one-hot to carry it.
BODY_SWAP_FRACTION = 0.3
# The per-epoch validation loss reads an even stride of at most this many validation frames:
# a pass over all 270 K pairs of the full set would cost ~12 s per epoch (bench/full_scale.py).
VAL_LOSS_FRAMES = 65_536


@dataclass
class FlowResult:
    encoder: ConditioningEncoder
    flow: FlowGenerator
    history: list[dict] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def build_models(in_dim: int, stats: Stats, seed: int) -> tuple[ConditioningEncoder, FlowGenerator]:
    torch.manual_seed(seed)
    n_dyn = min(in_dim, len(stats.dynamics_mean))
    enc = ConditioningEncoder(EncoderConfig(in_dim=in_dim, n_dynamics=n_dyn))
    flow = FlowGenerator(FlowConfig())
    mean, std = stats.arrays("dynamics")
    enc.dyn_mean.copy_(torch.from_numpy(mean[:n_dyn]))
    enc.dyn_std.copy_(torch.from_numpy(std[:n_dyn]))
    lmean, lstd = stats.arrays("latent")
    flow.latent_mean.copy_(torch.from_numpy(lmean))
    flow.latent_std.copy_(torch.from_numpy(lstd))
    return enc, flow


def _times(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, t) with r <= t from a logit-normal; most pairs have r = t."""
    a, b = torch.sigmoid(torch.randn(2, n, generator=gen) - 0.4)
    t, r = torch.maximum(a, b), torch.minimum(a, b)
    equal = torch.rand(n, generator=gen) < EQUAL_TR_FRACTION
    return torch.where(equal, t, r), t


def swap_bodies(c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Replace the dynamics of a random share of rows with another row's (mode, emotion kept)."""
    rows = torch.rand(len(c), generator=gen) < BODY_SWAP_FRACTION
    donors = torch.randperm(len(c), generator=gen)
    out = c.clone()
    out[rows, contract.DYNAMICS_SLICE] = c[donors[rows], contract.DYNAMICS_SLICE]
    return out


def meanflow_loss(enc, flow, c, x, gen) -> torch.Tensor:
    """Adaptively weighted MeanFlow loss on a batch; x is the normalised target latent."""
    e = enc(c)
    noise = torch.randn(x.shape, generator=gen).to(x.device)
    r, t = (a.to(x.device) for a in _times(len(x), gen))
    z = (1 - t)[:, None] * x + t[:, None] * noise
    v = noise - x
    u, dudt = torch.func.jvp(lambda z, r, t: flow.velocity(z, r, t, e), (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
    target = (v - (t - r)[:, None] * dudt).detach()
    err = ((u - target) ** 2).mean(1)
    return (err / (err.detach() + 1e-3)).mean()


def train_step(enc, flow, opt, params, c, x, gen) -> torch.Tensor:
    """One optimisation step on a batch (gradients clipped to norm 1); returns its loss.

    The loss stays on the device: reading it back every step would stall a GPU.
    """
    loss = meanflow_loss(enc, flow, c, x, gen)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.detach()


@torch.no_grad()
def validation_loss(enc, flow, c, x, seed: int = 0) -> torch.Tensor:
    """Flow-matching error ||u(z_t, t, t) - v||^2 with fixed noise and times: comparable across models.

    Noise and times are drawn on the CPU (the same on every device), then moved to the data.
    """
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(x.shape, generator=gen).to(x.device)
    t = torch.sigmoid(torch.randn(len(x), generator=gen) - 0.4).to(x.device)
    z = (1 - t)[:, None] * x + t[:, None] * noise
    losses = [((flow.velocity(z[i:i + 4096], t[i:i + 4096], t[i:i + 4096], enc(c[i:i + 4096])) - (noise - x)[i:i + 4096]) ** 2).sum()
              for i in range(0, len(x), 4096)]
    return sum(losses) / x.numel()


@torch.no_grad()
def frechet(enc, flow, c, x, steps: int, seed: int = 0) -> float:
    """Frechet distance (normalised latent space) between samples and real validation latents."""
    gen = torch.Generator().manual_seed(seed)
    samples = flow.sample(enc(c), torch.randn(x.shape, generator=gen).to(x.device), steps=steps)
    return frechet_distance(samples.cpu().numpy().astype(np.float64), x.cpu().numpy().astype(np.float64))


def _tensors(arrays: dict, stats: Stats, in_dim: int):
    mean, std = stats.arrays("latent")
    c = torch.from_numpy(np.ascontiguousarray(arrays["conditioning"][:, :in_dim]))
    x = torch.from_numpy((arrays["latent"] - mean) / std)
    return c, x


def train_flow(
    train: dict, val: dict, stats: Stats, profile: Profile, seed: int, ckpt_dir: Path,
    in_dim: int, log: Callable[[str], None] = print, device: str = "cpu",
) -> FlowResult:
    """Train (or resume) encoder + flow; deterministic for a seed on CPU.

    Randomness is drawn on the CPU from a per-epoch generator, so a resumed run replays
    exactly the batches and noise an uninterrupted one would have seen.
    """
    enc, flow = build_models(in_dim, stats, seed)
    enc.to(device), flow.to(device)
    params = list(enc.parameters()) + list(flow.parameters())
    opt = torch.optim.AdamW(params, lr=profile.flow_lr, weight_decay=0.0)
    c, x = _tensors(train, stats, in_dim)
    vc, vx = (a.to(device) for a in _tensors(val, stats, in_dim))
    every = slice(None, None, -(-len(vx) // VAL_LOSS_FRAMES))
    history, start = [], 1
    if (found := checkpoints.latest(ckpt_dir)) is not None:
        start, state = found[0] + 1, found[1]
        enc.load_state_dict(state["encoder"])
        flow.load_state_dict(state["flow"])
        opt.load_state_dict(state["opt"])
        history = state["history"]
        log(f"resumed from epoch {found[0]}")
    for epoch in range(start, profile.flow_epochs + 1):
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(len(x), generator=gen)
        steps = min(profile.flow_steps_per_epoch, max(1, len(x) // profile.flow_batch))
        enc.train(), flow.train()
        total = torch.zeros((), device=device)
        for s in range(steps):
            idx = order[(s * profile.flow_batch) % len(x):][: profile.flow_batch]
            batch = swap_bodies(c[idx], gen) if in_dim == contract.CONDITIONING_DIM else c[idx]
            total += train_step(enc, flow, opt, params, batch.to(device), x[idx].to(device), gen)
        enc.eval(), flow.eval()
        row = {"epoch": epoch, "train_loss": float(total) / steps, "val_loss": float(validation_loss(enc, flow, vc[every], vx[every]))}
        history.append(row)
        log(f"epoch {epoch}/{profile.flow_epochs}: train {row['train_loss']:.4f} val {row['val_loss']:.4f}")
        checkpoints.save(ckpt_dir, epoch, {"encoder": enc.state_dict(), "flow": flow.state_dict(), "opt": opt.state_dict(), "history": history})
    n = min(profile.eval_samples, len(vx))
    pick = torch.from_numpy(np.random.default_rng(seed).choice(len(vx), n, replace=False)).to(device)
    metrics = {
        "val_loss": history[-1]["val_loss"],
        "fd_1step": frechet(enc, flow, vc[pick], vx[pick], steps=1),
        "fd_16step": frechet(enc, flow, vc[pick], vx[pick], steps=16),
        "encoder_params": enc.num_params(),
        "flow_params": flow.num_params(),
    }
    return FlowResult(enc.cpu(), flow.cpu(), history, metrics)
