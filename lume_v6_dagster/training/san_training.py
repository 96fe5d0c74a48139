"""SAN V6 training in MLX, cross-track validated, with per-epoch checkpoints and resume."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from lume_v6_dagster import contract
from lume_v6_dagster.atomic_files import atomic_path, write_json
from lume_v6_dagster.dataset import Stats
from lume_v6_dagster.models.san import SAN, SANConfig
from lume_v6_dagster.temporal import next_rows
from lume_v6_dagster.training.profiles import Profile


@dataclass
class SANResult:
    model: SAN
    history: list[dict] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def san_inputs(arrays: dict, stats: Stats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised (latent, dynamics, controls) as float32 arrays."""
    (lm, ls), (dm, ds), (cm, cs) = stats.arrays("latent"), stats.arrays("dynamics"), stats.arrays("controls")
    dyn = arrays["conditioning"][:, contract.DYNAMICS_SLICE]
    return ((arrays["latent"] - lm) / ls).astype(np.float32), ((dyn - dm) / ds).astype(np.float32), ((arrays["controls"] - cm) / cs).astype(np.float32)


# Share of each batch whose body is held at its training mean (normalised 0), so the controls are learnt from the music
# first and the body adds what it carries across sessions. Without it, on the development set of real music SAN fit
# each session's motion (train 0.12, validation 0.69); with 0.3: 0.58 there, and 0.165 against 0.167 on the simulator
# (3 seeds, docs/pairs_and_models.md).
BODY_HELD = 0.3


def hold_bodies(dyn: np.ndarray, rng: np.random.Generator, share: float = BODY_HELD) -> np.ndarray:
    """A copy of normalised dynamics (B, 128) with a random `share` of rows set to the training mean."""
    held = dyn.copy()
    held[rng.random(len(dyn)) < share] = 0.0
    return held


# Weight of the controls' frame-to-frame change in SAN's loss. Fed one frame at a time, SAN's errors on consecutive
# frames were independent: on the simulator its loudness changed 4.3 x as much as the real control in Sky Garden even
# on the real music. Fitting each row's change to its next frame as well lowered that and the validation loss on
# both sets, every seed (3 seeds, docs/pairs_and_models.md); it costs a second forward pass per row.
CHANGE_WEIGHT = 1.0


def _loss(model, lat, dyn, y):
    """(objective, frame MSE): the frame MSE alone."""
    err = nn.losses.mse_loss(model(lat, dyn), y)
    return err, err


def _change_loss(model, lat, dyn, y, lat_next, dyn_next, y_next, weight):
    """(objective, frame MSE): the frame MSE plus `weight` x the squared error of the controls' change to each
    row's next frame (a row with none is its own next: no change on either side)."""
    now = model(lat, dyn)
    err = nn.losses.mse_loss(now, y)
    return err + weight * nn.losses.mse_loss(model(lat_next, dyn_next) - now, y_next - y), err


def evaluate(model: SAN, lat, dyn, y, batch: int = 8192) -> float:
    total = 0.0
    for i in range(0, len(y), batch):
        err = (model(mx.array(lat[i:i + batch]), mx.array(dyn[i:i + batch])) - mx.array(y[i:i + batch])) ** 2
        total += float(err.sum())
    return total / y.size


def _save(ckpt_dir: Path, epoch: int, model: SAN, opt, history) -> None:
    with atomic_path(ckpt_dir / f"epoch_{epoch:04d}.safetensors", suffix=".safetensors") as tmp:
        mx.save_safetensors(str(tmp), dict(tree_flatten(model.parameters())))
    with atomic_path(ckpt_dir / f"epoch_{epoch:04d}.opt.safetensors", suffix=".safetensors") as tmp:
        mx.save_safetensors(str(tmp), dict(tree_flatten(opt.state)))
    write_json(ckpt_dir / f"epoch_{epoch:04d}.json", {"epoch": epoch, "history": history})


def _resume(ckpt_dir: Path, model: SAN, opt) -> tuple[int, list]:
    metas = sorted(Path(ckpt_dir).glob("epoch_*.json"))
    if not metas:
        return 0, []
    meta = json.loads(metas[-1].read_text())
    stem = ckpt_dir / f"epoch_{meta['epoch']:04d}"
    model.load_weights(str(stem) + ".safetensors")
    opt.state = tree_unflatten(list(mx.load(str(stem) + ".opt.safetensors").items()))
    return meta["epoch"], meta["history"]


def compiled_step(model: SAN, opt, change_weight: float = 0.0) -> Callable:
    """One fused optimisation step (mx.compile: ~1.2x the eager rate, bench/training.py).

    Built after any resume: the compiled function captures the state objects it updates. The step takes
    (latent, dynamics, controls), and with a `change_weight` the same three of each row's next frame; it
    returns the batch's frame MSE, the validation loss's measure.
    """
    grad = nn.value_and_grad(model, partial(_change_loss, weight=change_weight) if change_weight else _loss)
    state = [model.state, opt.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(*batch):
        (_, err), grads = grad(model, *batch)
        opt.update(model, grads)
        return err
    return step


def train_san(train: dict, val: dict, stats: Stats, profile: Profile, seed: int, ckpt_dir: Path,
              log: Callable[[str], None] = print, change_weight: float = CHANGE_WEIGHT) -> SANResult:
    """Train (or resume) SAN V6; deterministic for a seed on CPU. `change_weight`: of the controls' change to
    each row's next frame of its track (`_change_loss`; 0: frames alone)."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    mx.random.seed(seed)
    model = SAN(SANConfig())
    opt = optim.Adam(learning_rate=profile.san_lr)
    opt.init(model.trainable_parameters())
    lat, dyn, y = san_inputs(train, stats)
    vlat, vdyn, vy = san_inputs(val, stats)
    done, history = _resume(ckpt_dir, model, opt)
    if done:
        log(f"resumed from epoch {done}")
    step = compiled_step(model, opt, change_weight)
    following = next_rows(train["t"], train["track"])
    following = np.where(following < 0, np.arange(len(following)), following)  # a row with no next frame: itself, no change
    for epoch in range(done + 1, profile.san_epochs + 1):
        rng = np.random.default_rng(seed * 100_003 + epoch)
        order = rng.permutation(len(y))
        total, n = 0.0, 0
        for i in range(0, len(order) - profile.san_batch + 1, profile.san_batch):
            idx = order[i:i + profile.san_batch]
            if change_weight:  # a row and its next frame, the body held on both or neither
                nxt = following[idx]
                now, after = np.split(hold_bodies(np.concatenate([dyn[idx], dyn[nxt]], axis=1), rng), 2, axis=1)
                batch = (lat[idx], now, y[idx], lat[nxt], after, y[nxt])
            else:
                batch = (lat[idx], hold_bodies(dyn[idx], rng), y[idx])
            loss = step(*(mx.array(a) for a in batch))
            mx.eval(model.parameters(), opt.state, loss)
            total, n = total + float(loss), n + 1
        row = {"epoch": epoch, "train_loss": total / max(n, 1), "val_loss": evaluate(model, vlat, vdyn, vy)}
        history.append(row)
        log(f"SAN epoch {epoch}/{profile.san_epochs}: train {row['train_loss']:.4f} val {row['val_loss']:.4f}")
        _save(ckpt_dir, epoch, model, opt, history)
    return SANResult(model, history, {"val_loss": history[-1]["val_loss"], "params": model.num_params()})
