"""One-step ablation: training recipes -> FD 1-step / 16-step, val loss, mode recovery, frames over time, training time.

Trains encoder + flow V6 on a fixed simulated dataset (the demo's 30 x 3 min, split as the
pipeline splits it) once per recipe and seed, and prints one JSON object whose `table` is the
ablation in docs/one_step.md. FDs are on the fixed evaluation set of the profile (evenly
strided validation frames, fixed noise); the figures over time are gate 3's (10-s windows,
each model with the noise process it ships with: V6's AR(1) fitted on its training tracks); the
spread is over training seeds.
  python -m bench.one_step                               # every variant, seeds 0,1,2 (about 2 h here)
  python -m bench.one_step --variants 'today;distill={"distill_fraction": 0.125}' --seeds 0,1,2 --jobs 2
  python -m bench.one_step --variants ema+warmup+distill8@0.05 --draws 3 --fit-windows 8   # the noise fit's windows
The figures over time are the mean over `--draws` draws of the noise (gate 3 reads one: its lag-1 moves by
about 0.01 from draw to draw), with the lag-1 gap (generated less real) of that mean and the mean of each draw's
90% interval over windows (`lag1_gap_lo`, `lag1_gap_hi`: how closely the validation windows read it).
"""

import dataclasses
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import click
import numpy as np

from bench.common import emit

# Today's recipe (before the ablation); each variant changes one lever of it, or combines winners.
TODAY = {"ema_decay": 0.0, "warmup_fraction": 0.0, "distill_weight": 0.0}
LEVERS = {
    "today": {},
    "interval50": {"interval_fraction": 0.5},
    "interval75": {"interval_fraction": 0.75},
    "jump10": {"jump_fraction": 0.10},
    "jump25": {"jump_fraction": 0.25},
    "time_wide": {"time_std": 1.6},
    "r_low": {"r_time_mean": -2.0, "interval_fraction": 0.5},
    "power0.5": {"weight_power": 0.5},
    "ema0.99": {"ema_decay": 0.99},
    "ema0.995": {"ema_decay": 0.995},
    "warmup": {"warmup_fraction": 0.25},
    "guidance1.5": {"guidance": 1.5, "cond_dropout": 0.1},
    "guidance2": {"guidance": 2.0, "cond_dropout": 0.1},
    "ema+warmup+power0.5": {"ema_decay": 0.99, "warmup_fraction": 0.25, "weight_power": 0.5},
    "ema+warmup+distill16": {"ema_decay": 0.99, "warmup_fraction": 0.25, "distill_weight": 0.1, "distill_steps": 16},
    "ema+warmup+distill8": {"ema_decay": 0.99, "warmup_fraction": 0.25, "distill_weight": 0.1, "distill_steps": 8},
    "ema+warmup+distill8@0.05": {"ema_decay": 0.99, "warmup_fraction": 0.25, "distill_weight": 0.05, "distill_steps": 8},
}


FIGURES = ("fd_1step", "fd_16step", "fd_ratio", "val_loss", "mode_accuracy", "sequence_fd", "frame_fd", "change_ratio", "lag1",
           "lag1_real", "lag1_gap", "lag1_gap_lo", "lag1_gap_hi", "spread_ratio", "level_change_ratio", "closest_modes_ratio")
V5_FIGURES = ("val_loss", "fd_1step", "sequence_fd", "change_ratio")


def _data(root: Path, data: str, tracks: int, minutes: float):
    """Captures (simulated, or the development set: `tracks` // 5 sessions per mode) and pairs built once
    under `root` (reused), then split as dataset_split does."""
    from lume_v6_dagster import devset
    from lume_v6_dagster.capture.folder import load_capture
    from lume_v6_dagster.dataset import build_split
    from lume_v6_dagster.pairs import build_pairs, write_pairs
    from lume_v6_dagster.simulate import plan_tracks, simulate

    if data == "devset":
        ids = [t.track_id for t in devset.plan(tracks // 5, minutes * 60)]
        build = lambda: devset.build(root / "captures", tracks // 5, minutes * 60, cache=root / "cache")  # noqa: E731
    else:
        ids = [p.track_id for p in plan_tracks(tracks, minutes, seed=0)]
        build = lambda: simulate(tracks, minutes, root / "captures", seed=0)  # noqa: E731
    if not all((root / "captures" / track).is_dir() for track in ids):
        build()
    paths = {}
    for track in ids:
        paths[track] = root / "pairs" / track / "pairs.npz"
        if not paths[track].exists():
            write_pairs(paths[track], build_pairs(load_capture(root / "captures" / track)))
    return build_split(paths)


def _one(args) -> dict:
    """Train one (variant, seed) on one thread; return its figures."""
    import torch

    from lume_v6_dagster import contract
    from lume_v6_dagster.acceptance import measure
    from lume_v6_dagster.models.flow import OneStepGenerator
    from lume_v6_dagster.noise import NoiseProcess
    from lume_v6_dagster.training.flow_training import Recipe, fit_noise, train_flow
    from lume_v6_dagster.training.profiles import get_profile

    root, data, tracks, minutes, profile, variant, levers, seed, in_dim, draws, fit_windows = args
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    from lume_v6_dagster.assets.training import V5_TRAIN_TRACKS
    from lume_v6_dagster.dataset import load_arrays

    split = _data(Path(root), data, tracks, minutes)
    v5 = in_dim == contract.V5_DYNAMICS_DIM  # the V5 recipe: 64 dims, two training tracks, as v5_baseline trains it
    train = load_arrays(split, sorted(split.train)[:V5_TRAIN_TRACKS] if v5 else split.train)
    val = load_arrays(split, split.val)
    recipe = dataclasses.replace(Recipe(), **{**TODAY, **levers})
    reads = get_profile(profile)  # its training, and what the acceptance report reads for it
    with tempfile.TemporaryDirectory() as ckpt:
        start = time.perf_counter()
        result = train_flow(train, val, split.stats, reads, seed, Path(ckpt), in_dim, log=lambda _: None, recipe=recipe)
        seconds = time.perf_counter() - start
    out = {"variant": variant, "seed": seed, "in_dim": in_dim, "seconds": seconds, **result.metrics}
    process = NoiseProcess.same() if v5 else fit_noise(result.encoder, result.flow, train, fit_windows or reads.noise_fit_windows)[0]  # as the asset ships it
    gen = OneStepGenerator(result.flow)
    axes = measure.sequence_axes(train["latent"], split.stats)
    keys = ("sequence_fd", "frame_fd", "change_ratio", "lag1", "lag1_real", "lag1_gap_lo", "lag1_gap_hi", "spread_ratio", "level_change_ratio")
    drawn = [measure.over_time({"model": (result.encoder, gen, process, 1)}, train, val, split.stats.arrays("latent"), axes,
                               reads.windows_per_track, seed=draw)["model"] for draw in range(draws)]
    out.update(noise=process.describe(), **{k: float(np.mean([d[k] for d in drawn])) for k in keys})
    out["lag1_gap"] = out["lag1"] - out["lag1_real"]
    if not v5:
        classify = measure.mode_classifier(train["latent"], contract.modes_of(train["conditioning"]))
        picked = measure.random_rows(len(val["latent"]), reads.gate_frames, 1)  # as gate 5 reads them
        out["mode_accuracy_real_music"] = measure.real_mode_accuracy(classify, val["latent"][picked],
                                                                     contract.modes_of(val["conditioning"][picked]))
        pipe = measure.Pipeline(result.encoder, gen, None)
        modes = measure.mode_conditioning(pipe, classify, val["conditioning"][picked], process.for_tracks(val, 0)[picked])
        real = measure.real_by_mode(val["latent"], contract.modes_of(val["conditioning"]))
        stats = split.stats.arrays("latent")  # gate 5's closest generated modes against the real music's closest
        out["mode_accuracy"] = modes["accuracy"]
        out["closest_modes_ratio"] = float(np.nanmin(measure.mode_distances(modes["generated"], stats))
                                           / np.nanmin(measure.mode_distances(real, stats)))
    return out


def _summary(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds, per variant."""
    table = []
    for variant in dict.fromkeys(r["variant"] for r in rows if r["in_dim"] != 64):
        runs = [r for r in rows if r["variant"] == variant and r["in_dim"] != 64]
        v5 = [r for r in rows if r["variant"] == variant and r["in_dim"] == 64]
        stat = lambda k: [round(float(np.mean([r[k] for r in runs])), 4), round(float(np.std([r[k] for r in runs])), 4)]  # noqa: E731
        table.append({"variant": variant, "seeds": len(runs), **{k: stat(k) for k in FIGURES},
                      "train_seconds": stat("seconds"), **({f"v5_{k}": round(float(np.mean([r[k] for r in v5])), 4) for k in V5_FIGURES} if v5 else {})})
    return table


@click.command()
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path(".cache/one_step"), show_default=True,
              help="Captures and pairs are built once under ROOT/<tracks>x<minutes> and reused.")
@click.option("--data", type=click.Choice(["simulator", "devset"]), default="simulator", show_default=True,
              help="devset: real music and motion (docs/devset.md), e.g. --tracks 10 --minutes 1.")
@click.option("--tracks", default=30, show_default=True)
@click.option("--minutes", default=3.0, show_default=True)
@click.option("--profile", default="demo", show_default=True)
@click.option("--variants", default=";".join(LEVERS), show_default=True, help="';'-separated names, or name=json levers.")
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option("--v5", "with_v5", is_flag=True, help="Also train the V5 recipe (64-D input) per variant and seed.")
@click.option("--jobs", default=1, show_default=True, help="Trainings at once (each on one thread).")
@click.option("--draws", default=1, show_default=True, help="Noise draws the figures over time are averaged over.")
@click.option("--fit-windows", type=int, default=None, help="10-s windows per mode the noise process is fitted on (default: the profile's).")
def main(root, data, tracks, minutes, profile, variants, seeds, with_v5, jobs, draws, fit_windows):
    from lume_v6_dagster.training.profiles import get_profile

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = root / f"{'devset-' if data == 'devset' else ''}{tracks}x{minutes:g}"
    _data(root, data, tracks, minutes)  # build once before the workers read it
    named = {}
    for item in variants.split(";"):
        name, _, levers = item.partition("=")
        named[name] = json.loads(levers) if levers else LEVERS[name]
    dims = (141, 64) if with_v5 else (141,)
    tasks = [(str(root), data, tracks, minutes, profile, name, levers, int(seed), d, draws, fit_windows)
             for name, levers in named.items() for seed in seeds.split(",") for d in dims]
    rows = []
    with ProcessPoolExecutor(jobs) as pool:
        for row in pool.map(_one, tasks):  # each run on stderr as it finishes
            click.echo(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), err=True)
            rows.append(row)
    emit("one_step", data=data, profile=profile, tracks=tracks, minutes=minutes, fd_samples=rows[0]["fd_samples"],
         mode_accuracy_real_music=next(r["mode_accuracy_real_music"] for r in rows if r["in_dim"] != 64),  # the same data for every variant
         levers={name: named[name] for name in named}, draws=draws, fit_windows=fit_windows or get_profile(profile).noise_fit_windows,
         table=_summary(rows))


if __name__ == "__main__":
    main()
