"""Joint training of ConditioningEncoder + FlowGenerator with the MeanFlow objective.

MeanFlow learns the average velocity u(z_t, r, t) over an interval, using the identity
u = v - (t - r) du/dt (du/dt by a forward-mode JVP), so a single evaluation from noise
lands on a sample. Plain flow matching sampled in one Euler step would collapse to the
conditional mean; the 1-step vs 16-step Frechet distances measure that this does not.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lume_v6_dagster import contract, noise, temporal
from lume_v6_dagster.capacity import Inline, threads_beside
from lume_v6_dagster.dataset import Stats
from lume_v6_dagster.models.encoder import ConditioningEncoder, EncoderConfig
from lume_v6_dagster.models.flow import FlowConfig, FlowGenerator, one_step_for_rows
from lume_v6_dagster.training import checkpoints
from lume_v6_dagster.training.metrics import bootstrap_interval, frechet_distance
from lume_v6_dagster.training.profiles import Profile

# The validation loss reads an even stride of at most this many validation frames: a pass over
# all 270 K pairs of the full set would cost ~12 s (bench/full_scale.py). The per-epoch curve
# reads a sparser stride: on the demo it was a fifth of the training time at the full stride.
VAL_LOSS_FRAMES = 65_536
EPOCH_VAL_FRAMES = 16_384
DISTILL_SHARE = 0.125  # rows of each batch that the distillation term (Recipe.distill_weight) samples in many steps
TEMPORAL_SHARE = 0.25  # rows of each batch whose next frame the consecutive-frame term (Recipe.temporal_weight) also generates
FD_BOOTSTRAP = 200  # resamples of the evaluation set for each Frechet distance's 90% interval


@dataclass(frozen=True)
class Recipe:
    """How the one-step generator is trained. The defaults won the ablation in docs/one_step.md:
    an EMA of the weights, flow matching first, then MeanFlow with a light pull (weight 0.05) of the
    one-step sample onto the network's own 8-step sample."""

    interval_fraction: float = 0.25  # share of (r, t) pairs with r != t; the rest is flow matching (r = t)
    jump_fraction: float = 0.0  # share of pairs set to the whole jump (r, t) = (0, 1) that the phone takes
    time_mean: float = -0.4  # logit-normal time sampler: t = sigmoid(N(mean, std))
    time_std: float = 1.0
    r_time_mean: float | None = None  # a lower mean for the interval's start pushes r towards 0 (None: same as t)
    weight_power: float = 1.0  # adaptive loss weight 1 / (err + 1e-3)^p
    ema_decay: float = 0.99  # exponential moving average of the weights, evaluated and exported (0 = off)
    warmup_fraction: float = 0.25  # share of the epochs trained with flow matching only, before MeanFlow
    guidance: float = 1.0  # classifier-free guidance scale folded into the target (1 = none)
    cond_dropout: float = 0.0  # share of rows trained with the null condition (guidance needs it)
    distill_weight: float = 0.05  # weight of a term that pulls the one-step sample onto the multi-step one (0 = off)
    distill_steps: int = 8
    # Consecutive frames: one-step frames of two successive pairs, from AR(1) noise of `temporal_rho` (1: the same
    # noise), should change as much as the real music does (the log of the mean absolute change matched; 0 = off):
    # per band, and in overall level (summed band power, what SAN's loudness follows).
    temporal_weight: float = 0.0
    temporal_rho: float = 0.9
    level_weight: float = 0.0
    # Body style reveals the mode, so a model can learn "mode" from the body and ignore the
    # one-hot. Giving this share of each batch another row's body forces the one-hot to carry it.
    body_swap: float = 0.3


RECIPE_NAME = "ema+warmup+distill8@0.05"  # the ablation variant the defaults above are (docs/one_step.md)


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


def sample_times(n: int, gen: torch.Generator, recipe: Recipe, meanflow: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, t), r <= t: logit-normal pairs, a share with r = t, a share pinned to (0, 1).

    The same random draws happen whatever the recipe, so a resumed run replays them exactly.
    """
    means = torch.tensor([[recipe.time_mean], [recipe.time_mean if recipe.r_time_mean is None else recipe.r_time_mean]])
    a, b = torch.sigmoid(torch.randn(2, n, generator=gen) * recipe.time_std + means)
    interval, jump = torch.rand(2, n, generator=gen)
    t, r = torch.maximum(a, b), torch.minimum(a, b)
    r = torch.where(meanflow & (interval < recipe.interval_fraction), r, t)
    jump = meanflow & (jump < recipe.jump_fraction)
    return torch.where(jump, 0.0, r), torch.where(jump, 1.0, t)


def swap_bodies(c: torch.Tensor, gen: torch.Generator, share: float = Recipe.body_swap) -> torch.Tensor:
    """Replace the dynamics of a random `share` of rows with another row's (mode, emotion kept)."""
    rows = torch.rand(len(c), generator=gen) < share
    donors = torch.randperm(len(c), generator=gen)
    out = c.clone()
    out[rows, contract.DYNAMICS_SLICE] = c[donors[rows], contract.DYNAMICS_SLICE]
    return out


def meanflow_loss(enc, flow, c, x, gen, recipe: Recipe = Recipe(), meanflow: bool = True, following=None) -> torch.Tensor:
    """Adaptively weighted MeanFlow loss on a batch, all terms summed; x is the normalised target latent."""
    return sum(term() for term in meanflow_terms(enc, flow, c, x, gen, recipe, meanflow, following))


def meanflow_terms(enc, flow, c, x, gen, recipe: Recipe = Recipe(), meanflow: bool = True, following=None,
                   helper: Executor | None = None) -> list[Callable[[], torch.Tensor]]:
    """The loss's terms, each a function that computes it: the MeanFlow term first, then the distillation and
    consecutive-frame terms. `helper` computes their no-gradient targets (the JVP, the many-step teacher), which
    the terms wait for, beside whatever the caller does meanwhile (the first term's backward pass).

    Random draws come from a CPU generator, in the same order whoever computes what, and move to the data's
    device. The target takes a stop-gradient (so its JVP needs no graph); with guidance, the sample velocity v
    is mixed with the model's own unconditional velocity (MeanFlow, section 4.2), so one step samples the
    guided field. `following`: for the batch's first rows, their own conditioning (before any body swap), the
    next frame's conditioning and its latent: the consecutive-frame term's pairs.
    """
    helper = helper or Inline()
    n, device = len(x), x.device
    noise = torch.randn(x.shape, generator=gen).to(device)
    r, t = sample_times(n, gen, recipe, meanflow)
    interval = (r < t).nonzero().squeeze(1).to(device)  # picked on the CPU: a data-dependent shape would stall a GPU
    r, t = r.to(device), t.to(device)
    dropped = (torch.rand(n, generator=gen) < recipe.cond_dropout).to(device)
    e = torch.where(dropped[:, None], 0.0, enc(c))  # the null condition is a zero embedding
    z = (1 - t)[:, None] * x + t[:, None] * noise
    v = noise - x
    if recipe.guidance != 1.0:
        with torch.no_grad():
            unconditional = flow.velocity(z, t, t, torch.zeros_like(e))
        v = torch.where(dropped[:, None], v, recipe.guidance * v + (1 - recipe.guidance) * unconditional)
    dudt = helper.submit(_path_derivative, flow, z, r, t, e.detach(), v, interval)
    distill = meanflow and recipe.distill_weight
    if distill:  # plain MSE: adaptive weights would blow up its near-zero early errors
        k = max(1, int(n * DISTILL_SHARE))
        teacher = helper.submit(_teacher, flow, e.detach()[:k], noise[:k], recipe.distill_steps)

    def meanflow_term():
        u = flow.velocity(z, r, t, e)
        err = ((u - (v - (t - r)[:, None] * dudt.result())) ** 2).mean(1)
        return (err / (err.detach() + 1e-3) ** recipe.weight_power).mean()

    terms = [meanflow_term]
    if distill:
        terms.append(lambda: recipe.distill_weight * _distillation_error(flow, e.detach()[:k], noise[:k], teacher.result()).mean())
    if meanflow and consecutive(recipe) and following is not None:
        now, after, x_next = following  # the body as it was (no swap), then the next frame's

        def consecutive_term():
            bands, level = _temporal_error(flow, enc(now), enc(after), x[: len(x_next)], x_next, gen, recipe.temporal_rho)
            return recipe.temporal_weight * bands + recipe.level_weight * level
        terms.append(consecutive_term)
    return terms


def consecutive(recipe: Recipe) -> bool:
    """Whether the recipe trains on pairs of consecutive frames."""
    return bool(recipe.temporal_weight or recipe.level_weight)


def _temporal_error(flow, e, e_next, x, x_next, gen, rho: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared log ratios of the one-step frames' mean absolute frame-to-frame change to the real music's, on
    consecutive pairs with AR(1) noise: per band (gate 3's change ratio, averaged), and of the overall level."""
    z = torch.randn(x.shape, generator=gen).to(x.device)
    z_next = rho * z + (1 - rho ** 2) ** 0.5 * torch.randn(x.shape, generator=gen).to(x.device)
    now, after = flow.sample(e, z), flow.sample(e_next, z_next)
    bands = _log_ratio((after - now).abs().mean(0), (x_next - x).abs().mean(0)).mean()
    level = _log_ratio((_level(flow, after) - _level(flow, now)).abs().mean(), (_level(flow, x_next) - _level(flow, x)).abs().mean())
    return bands, level


def _log_ratio(made: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    return (torch.log(made + 1e-3) - torch.log(real + 1e-3)) ** 2


def _level(flow, z: torch.Tensor) -> torch.Tensor:
    """Overall level (dB) of normalised frames: 10 log10 of the summed band powers (`temporal.level`)."""
    return torch.logsumexp(flow.denormalize(z) * temporal.DB_TO_LN, 1) / temporal.DB_TO_LN


@torch.no_grad()
def _path_derivative(flow, z, r, t, e, v, rows: torch.Tensor) -> torch.Tensor:
    """du/dt along the path: a JVP with tangent (v, 0, 1) over (z, r, t), evaluated on `rows` (r < t).

    Elsewhere its factor (t - r) is zero, and such rows are 75% of a MeanFlow batch and all of
    a flow-matching one. A full-profile step took 0.6x (flow matching) and 0.8x (MeanFlow) the
    time of a full-batch JVP (bench/README.md).
    """
    dudt = torch.zeros_like(z)
    if len(rows):
        e_rows = e[rows]
        tangent = (v[rows], torch.zeros_like(r[rows]), torch.ones_like(t[rows]))
        dudt[rows] = torch.func.jvp(lambda z, r, t: flow.velocity(z, r, t, e_rows), (z[rows], r[rows], t[rows]), tangent)[1]
    return dudt


@torch.no_grad()
def _teacher(flow, e, noise, steps: int) -> torch.Tensor:
    """The same network's many-step sample: what the distillation term pulls the one-step sample onto."""
    return flow.sample(e, noise, steps=steps)


def _distillation_error(flow, e, noise, teacher) -> torch.Tensor:
    """Squared error of the one-step sample against the teacher, on the first DISTILL_SHARE of the batch; the
    embedding is held fixed so the encoder is not pulled."""
    zeros, ones = torch.zeros(len(noise), device=noise.device), torch.ones(len(noise), device=noise.device)
    return ((noise - flow.velocity(noise, zeros, ones, e) - teacher) ** 2).mean(1)


def train_step(enc, flow, opt, params, c, x, gen, recipe: Recipe = Recipe(), meanflow: bool = True, following=None,
               helper: Executor | None = None) -> torch.Tensor:
    """One optimisation step on a batch (gradients clipped to norm 1); returns its loss.

    Each term's backward pass runs as soon as it is computed, so the first one's overlaps the `helper`'s
    targets for the next: the gradients are the same sums, whether or not a helper thread computes them.
    The loss stays on the device: reading it back every step would stall a GPU.
    """
    opt.zero_grad(set_to_none=True)
    loss = torch.zeros((), device=x.device)
    for term in meanflow_terms(enc, flow, c, x, gen, recipe, meanflow, following, helper):
        value = term()
        value.backward()
        loss += value.detach()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss


def helper_thread(enabled: bool = True) -> Executor:
    """A second thread for a step's no-gradient targets (torch gives it this thread's count of threads per op)."""
    return threads_beside(enabled, 1, "flow-targets")


def evaluation_pool(overlap: bool, device: str) -> Executor:
    """Threads for the measures after training (FD resamples, the noise fit's grid): one per core where a step
    may use the host's other cores (`overlap`, on a CPU)."""
    return threads_beside(overlap and device == "cpu", name="evaluation")


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
def sample_quality(enc, flow, c, x, modes: np.ndarray, seed: int = 0, pool: Executor | None = None) -> dict[str, float]:
    """Frechet distance of 1-step and 16-step samples to the real latents (normalised units).

    On a fixed evaluation set with fixed noise: each FD with its 90% bootstrap interval (resamples
    measured on the `pool`), the 1-step / 16-step ratio, and the FD per mode so that one collapsing mode shows.
    """
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)).to(x.device)
    e, real = enc(c), x.cpu().numpy().astype(np.float64)
    out = {"fd_samples": len(x)}
    for steps in (1, 16):
        fake = flow.sample(e, noise, steps=steps).cpu().numpy().astype(np.float64)
        key = f"fd_{steps}step"
        out[key] = frechet_distance(fake, real)
        out[f"{key}_lo"], out[f"{key}_hi"] = bootstrap_interval(fake, real, FD_BOOTSTRAP, seed, pool=pool)
        out.update({f"{key}_{name}": frechet_distance(fake[modes == m], real[modes == m])
                    for m, name in enumerate(contract.MODES) if (modes == m).sum() > contract.LATENT_DIM})
    out["fd_ratio"] = out["fd_1step"] / out["fd_16step"]
    return out


def _tensors(arrays: dict, stats: Stats, in_dim: int):
    mean, std = stats.arrays("latent")
    c = torch.from_numpy(np.ascontiguousarray(arrays["conditioning"][:, :in_dim]))
    x = torch.from_numpy((arrays["latent"] - mean) / std)
    return c, x


def _following(idx: torch.Tensor, successor: torch.Tensor, c, x, share: float):
    """The batch reordered so its first rows have a next frame; their conditioning, the next frame's, and its latent."""
    has = successor[idx] >= 0
    idx = torch.cat([idx[has], idx[~has]])
    k = min(int(has.sum()), max(1, int(len(idx) * share)))
    after = successor[idx[:k]]
    return idx, (c[idx[:k]], c[after], x[after])


def _resume(ckpt_dir: Path, model, ema, opt, recipe: Recipe) -> tuple[int, list]:
    """(last epoch, history) from the newest checkpoint; refuses one written by another recipe."""
    if (found := checkpoints.latest(ckpt_dir)) is None:
        return 0, []
    epoch, state = found
    if state.get("recipe") != asdict(recipe):
        raise ValueError(f"{ckpt_dir}: checkpoints were written by another training recipe ({state.get('recipe')}); "
                         "move them away to retrain from scratch")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    return epoch, state["history"]


def train_flow(
    train: dict, val: dict, stats: Stats, profile: Profile, seed: int, ckpt_dir: Path,
    in_dim: int, log: Callable[[str], None] = print, device: str = "cpu", recipe: Recipe = Recipe(), overlap: bool = False,
) -> FlowResult:
    """Train (or resume) encoder + flow; deterministic for a seed on CPU.

    Randomness is drawn on the CPU from a per-epoch generator, so a resumed run replays
    exactly the batches and noise an uninterrupted one would have seen. With an EMA, the
    averaged weights are the ones validated, measured and returned for export. `overlap`:
    each step's no-gradient targets on a second thread (`helper_thread`), same weights; on a CPU
    only (a GPU queues its kernels without the host waiting, and MPS ops from two Python threads
    crash the process: pytorch/pytorch#197805).
    """
    enc, flow = build_models(in_dim, stats, seed)
    model = torch.nn.ModuleDict({"encoder": enc, "flow": flow}).to(device)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema_decay), use_buffers=True) if recipe.ema_decay else None
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=profile.flow_lr, weight_decay=0.0)
    c, x = _tensors(train, stats, in_dim)
    successor = torch.from_numpy(temporal.next_rows(train["t"], train["track"])) if consecutive(recipe) else None
    vc, vx = (a.to(device) for a in _tensors(val, stats, in_dim))
    final, curve = (slice(None, None, -(-len(vx) // n)) for n in (VAL_LOSS_FRAMES, EPOCH_VAL_FRAMES))
    done, history = _resume(ckpt_dir, model, ema, opt, recipe)
    if done:
        log(f"resumed from epoch {done}")
    shipped = ema.module if ema is not None else model
    warmup = int(recipe.warmup_fraction * profile.flow_epochs)
    with helper_thread(overlap and device == "cpu") as helper:
        for epoch in range(done + 1, profile.flow_epochs + 1):
            gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
            order = torch.randperm(len(x), generator=gen)
            steps = min(profile.flow_steps_per_epoch, max(1, len(x) // profile.flow_batch))
            model.train()
            total = torch.zeros((), device=device)
            for s in range(steps):
                idx, following = order[(s * profile.flow_batch) % len(x):][: profile.flow_batch], None
                if consecutive(recipe):
                    idx, following = _following(idx, successor, c, x, TEMPORAL_SHARE)
                    following = tuple(a.to(device) for a in following)
                batch = swap_bodies(c[idx], gen, recipe.body_swap) if in_dim == contract.CONDITIONING_DIM else c[idx]
                total += train_step(enc, flow, opt, params, batch.to(device), x[idx].to(device), gen, recipe, epoch > warmup, following, helper)
                if ema is not None:
                    ema.update_parameters(model)
            model.eval()
            row = {"epoch": epoch, "train_loss": float(total) / steps,
                   "val_loss": float(validation_loss(shipped["encoder"], shipped["flow"], vc[curve], vx[curve]))}
            history.append(row)
            log(f"epoch {epoch}/{profile.flow_epochs}: train {row['train_loss']:.4f} val {row['val_loss']:.4f}")
            checkpoints.save(ckpt_dir, epoch, {"model": model.state_dict(), "ema": ema.state_dict() if ema is not None else {},
                                               "opt": opt.state_dict(), "history": history, "recipe": asdict(recipe)})
    enc, flow = shipped["encoder"].eval(), shipped["flow"].eval()
    fixed = torch.arange(0, len(vx), max(1, len(vx) // profile.eval_samples), device=device)[: profile.eval_samples]
    modes = contract.modes_of(val["conditioning"][fixed.cpu().numpy()])
    with evaluation_pool(overlap, device) as pool:
        quality = sample_quality(enc, flow, vc[fixed], vx[fixed], modes, pool=pool)
    metrics = {"val_loss": float(validation_loss(enc, flow, vc[final], vx[final])), **quality,
               "encoder_params": enc.num_params(), "flow_params": flow.num_params()}
    return FlowResult(enc.cpu(), flow.cpu(), history, metrics)


@torch.no_grad()
def fit_noise(enc, flow, train: dict, windows: int, pool: Executor | None = None,
              log: Callable[[str], None] = lambda _: None) -> tuple[noise.NoiseProcess, list[dict]]:
    """The noise process this model ships with, fitted per mode on `windows` of its own training tracks (`noise.fit`)."""
    return noise.fit(lambda rows: one_step_for_rows(enc, flow, train["conditioning"][rows]), train, windows, pool=pool, log=log)
