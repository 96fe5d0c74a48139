"""Fan-in training assets: dataset split + statistics, SAN V6 (MLX), encoder + flow V6, V5 baseline."""

import os
import time
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import mlx.core as mx

from lume_v6_dagster import capacity, code_version, contract, plots
from lume_v6_dagster.capacity import TRAINING_POOL
from lume_v6_dagster.assets.capture import track_pairs
from lume_v6_dagster.atomic_files import atomic_path, save_torch, write_json
from lume_v6_dagster.assets.upstream import recorded
from lume_v6_dagster.deployment import TRAINING_TAGS, where_it_ran
from lume_v6_dagster.capture.folder import changed_files
from lume_v6_dagster.checksums import sha256_file
from lume_v6_dagster.dataset import DatasetSplit, build_split, load_arrays
from lume_v6_dagster.pairs import pairs_violations
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore, TrainingHost
from lume_v6_dagster.noise import GLIDE_LAG1_SLACK, SPREAD_FLOOR, NoiseProcess
from lume_v6_dagster.training.flow_training import evaluation_pool, fit_noise, train_flow
from lume_v6_dagster.training.profiles import get_profile
from lume_v6_dagster.training.san_training import train_san

GROUP = "training"
V5_TRAIN_TRACKS = 2
SAN_DETERMINISM = "seeded; bitwise-identical weights on CPU (tested), not verified on the Apple GPU"


def _usable_pairs(instance, capture_store: CaptureStore, artifact_store: ArtifactStore):
    """Pairs files of every track, minus those whose capture changed since ingest or failing the schema."""
    paths, excluded = {}, {}
    for track in instance.get_dynamic_partitions(tracks.name):
        path = artifact_store.pairs_path(track)
        record = artifact_store.raw_record(track)
        folder = capture_store.folder(track)
        if path is None or record is None:
            excluded[track] = "no pairs yet"
        elif not folder.is_dir():
            excluded[track] = f"capture folder {folder} is gone"
        elif changed := changed_files(folder, record.get("stats", {}), record["sha256"]):
            excluded[track] = f"capture changed after ingest ({', '.join(changed)})"
        elif violations := pairs_violations(path):
            excluded[track] = f"pairs schema: {violations[0]}"
        else:
            paths[track] = path
    return paths, excluded


def _coverage_table(cells) -> dg.MetadataValue:
    head = "| mode | " + " | ".join(contract.EMOTIONS) + " |\n|---|" + "---|" * len(contract.EMOTIONS)
    rows = [f"| {m} | " + " | ".join(f"{v:.1f}" for v in row) + " |" for m, row in zip(contract.MODES, cells)]
    return dg.MetadataValue.md(head + "\n" + "\n".join(rows))


@dg.asset(group_name=GROUP, deps=[track_pairs], kinds={"numpy"})
def dataset_split(context: dg.AssetExecutionContext, capture_store: CaptureStore, artifact_store: ArtifactStore) -> dg.MaterializeResult:
    """Cross-track split, training-only normalisation statistics and the dataset fingerprint.

    Each split is written once, under its fingerprint: a training step queued behind a newer
    split still reads the one it was asked to train on.
    """
    paths, excluded = _usable_pairs(context.instance, capture_store, artifact_store)
    for track, reason in excluded.items():
        context.log.warning(f"{track}: excluded ({reason})")
    split = build_split(paths, excluded)
    path = artifact_store.training_dir("dataset") / split.fingerprint / "split.json"
    if not path.exists():
        split.save(path)
    heatmap = plots.coverage_heatmap(split.coverage_minutes, contract.MODES, contract.EMOTIONS, path.parent / "coverage.png")
    return dg.MaterializeResult(
        metadata={"fingerprint": split.fingerprint, "split_path": dg.MetadataValue.path(str(path)),
                  "train_tracks": len(split.train), "val_tracks": len(split.val), "val_ids": ", ".join(split.val),
                  "train_pairs": split.stats.n, "excluded": len(excluded), "excluded_tracks": dg.MetadataValue.json(excluded),
                  "coverage_minutes": _coverage_table(split.coverage_minutes),
                  "coverage": dg.MetadataValue.md(plots.markdown_image(heatmap, "minutes of valid pairs per mode x emotion")),
                  **where_it_ran()},
        data_version=dg.DataVersion(split.fingerprint),
    )


def _recorded_split(context) -> tuple[DatasetSplit, str]:
    split_path = recorded(context, "dataset_split")["split_path"]
    return DatasetSplit.load(Path(split_path)), split_path


def run_dir(artifact_store: ArtifactStore, name: str, split: DatasetSplit, host: TrainingHost) -> Path:
    """One folder per dataset, recipe, seed and model code: a resume only ever continues the same training."""
    return artifact_store.training_dir(name) / f"{split.fingerprint}-{host.profile}-seed{host.seed}-code{code_version.model_code_version()}"


def _noise_table(scan: list[dict], process: NoiseProcess) -> dict:
    """The noise fit's scans as Markdown metadata (nothing for a model that draws fresh noise)."""
    if not scan:
        return {}
    shipped = dict(zip(contract.MODES, process.modes))
    rows = [f"| {r['mode']} | {r['jump']} | {r['rho']} | {r['change_ratio']:.2f} | {r['lag1']:.3f} ({r['lag1_real']:.3f}) | "
            f"{r['spread_ratio']:.2f} | {r['mismatch']:.4f} | {'yes' if (shipped[r['mode']].jump, shipped[r['mode']].rho) == (r['jump'], r['rho']) else ''} |"
            for r in scan if "jump" in r]
    glides = [f"| {r['mode']} | {r['level_ema']} | {r['level_offset']:+.2f} | {r['level_change_ratio']:.2f} | {r['change_ratio']:.2f} | {r['lag1']:.3f} ({r['lag1_real']:.3f}) | "
              f"{r['spread_ratio']:.2f} | {r['mismatch']:.4f} | {'yes' if r['shipped'] else ''} |" for r in scan if "level_ema" in r]
    return {"noise_fit": dg.MetadataValue.md(
        f"Per mode, on training tracks, one-step frames against the real music (10-s windows); a spread below {SPREAD_FLOOR} is ruled out while any other is left:\n\n"
        "| mode | jump | rho | change ratio | lag-1 (real) | spread ratio | mismatch | shipped |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows)
        + "\n\nThen, through each mode's shipped (jump, rho), the EMA of the frames' level with the least mismatch, the level's "
        f"squared log change ratio added, among those whose lag-1 is at most {GLIDE_LAG1_SLACK} above the music's (the least if none is), "
        "and the offset (dB) that keeps the frames' median level:\n\n"
        "| mode | level EMA | offset | level change ratio | change ratio | lag-1 (real) | spread ratio | mismatch | shipped |\n|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(glides))}


def _result(context, name: str, weights: Path, history: list[dict], metrics: dict, seconds: float, provenance: dict,
            extra: dict | None = None) -> dg.MaterializeResult:
    """The materialization; the weights' sha256 travels with it, so whoever loads them later can check them."""
    folder = weights.parent
    provenance = {**provenance, "weights_sha256": sha256_file(weights)}
    plot = plots.loss_curves({name: history}, folder / "loss.png")
    write_json(folder / "metrics.json", {"metrics": metrics, "history": history, "seconds": seconds, "provenance": provenance})
    table = "| epoch | train | val |\n|---|---|---|\n" + "\n".join(f"| {r['epoch']} | {r['train_loss']:.4f} | {r['val_loss']:.4f} |" for r in history)
    return dg.MaterializeResult(metadata={
        **{k: float(v) for k, v in metrics.items()},
        **provenance,
        "train_seconds": round(seconds, 1),
        "run_dir": dg.MetadataValue.path(str(folder)),
        "loss_curve": dg.MetadataValue.md(plots.markdown_image(plot, f"{name}: train (dashed) and validation loss per epoch")),
        "losses": dg.MetadataValue.md(table),
        **(extra or {}),
    })


def _provenance(split: DatasetSplit, split_path: str, host: TrainingHost, determinism: str) -> dict:
    """What downstream assets use to find and describe this model: recorded, never re-derived."""
    return {"dataset_fingerprint": split.fingerprint, "split_path": split_path, "profile": host.profile, "seed": host.seed,
            "device": host.torch_device(), "threads": host.threads, "code_version": code_version.model_code_version(),
            "determinism": determinism, **where_it_ran()}


def _train_encoder_flow(context, artifact_store, host, name: str, in_dim: int, v5_recipe: bool = False):
    niceness = capacity.beside_the_critical_path() if v5_recipe else os.getpriority(os.PRIO_PROCESS, 0)  # V6: the critical path
    determinism = host.setup()
    split, split_path = _recorded_split(context)
    train_ids = sorted(split.train)[:V5_TRAIN_TRACKS] if v5_recipe else split.train
    folder = run_dir(artifact_store, name, split, host)
    start = time.perf_counter()
    train = load_arrays(split, train_ids)
    profile = get_profile(host.profile)
    result = train_flow(train, load_arrays(split, split.val), split.stats, profile,
                        host.seed, folder / "checkpoints", in_dim, log=context.log.info, device=host.torch_device(), overlap=host.overlap)
    fit_start = time.perf_counter()
    with evaluation_pool(host.overlap, "cpu") as pool:  # the trained models are back on the CPU
        process, scan = ((NoiseProcess.same(), []) if v5_recipe
                          else fit_noise(result.encoder, result.flow, train, profile.noise_fit_windows, pool, log=context.log.info))
    fit_seconds = time.perf_counter() - fit_start
    context.log.info(f"noise process: {process.describe()} (fitted on training tracks)" if scan else "noise process: fresh every frame (the V5 recipe)")
    save_torch(folder / "model.pt", {"encoder": result.encoder.state_dict(), "flow": result.flow.state_dict(), "in_dim": in_dim,
                                     "train_tracks": train_ids, "fingerprint": split.fingerprint, "noise": process.as_dict()})
    provenance = {**_provenance(split, split_path, host, determinism), "noise_process": process.as_dict()}
    noise_figures = {f"noise_{k}_{mode}": v for mode, m in zip(contract.MODES, process.modes) for k, v in asdict(m).items()}
    return _result(context, name, folder / "model.pt", result.history, {**result.metrics, **noise_figures},
                   time.perf_counter() - start, provenance,
                   {"cpu_niceness": niceness, "noise_fit_seconds": round(fit_seconds, 1), **_noise_table(scan, process)})


@dg.asset(group_name=GROUP, deps=[dataset_split], pool=TRAINING_POOL, op_tags=TRAINING_TAGS, kinds={"pytorch"})
def encoder_flow_v6(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """ConditioningEncoder V6 (141 -> 768) + one-step FlowGenerator V6, trained jointly (MeanFlow)."""
    return _train_encoder_flow(context, artifact_store, training_host, "encoder_flow_v6", contract.CONDITIONING_DIM)


@dg.asset(group_name=GROUP, deps=[dataset_split], pool=TRAINING_POOL, op_tags=TRAINING_TAGS, kinds={"pytorch"})
def v5_baseline(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """The V5 recipe: first 64 dims only, no mode/emotion, 2 training tracks; same validation tracks.

    It shares V6's latent normalisation so both models are scored in the same units.
    """
    return _train_encoder_flow(context, artifact_store, training_host, "v5_baseline", contract.V5_DYNAMICS_DIM, v5_recipe=True)


@dg.asset(group_name=GROUP, deps=[dataset_split], pool=TRAINING_POOL, op_tags=TRAINING_TAGS, kinds={"mlx"})
def san_v6(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """SAN V6 in MLX: music latent + 128-D dynamics -> 16 controls, cross-track validated."""
    niceness = capacity.beside_the_critical_path()
    split, split_path = _recorded_split(context)
    folder = run_dir(artifact_store, "san_v6", split, training_host)
    start = time.perf_counter()
    result = train_san(load_arrays(split, split.train), load_arrays(split, split.val), split.stats,
                       get_profile(training_host.profile), training_host.seed, folder / "checkpoints", log=context.log.info)
    with atomic_path(folder / "model.safetensors", suffix=".safetensors") as tmp:
        result.model.save_weights(str(tmp))
    provenance = {**_provenance(split, split_path, training_host, SAN_DETERMINISM), "device": f"mlx {mx.default_device()}"}
    return _result(context, "san_v6", folder / "model.safetensors", result.history, result.metrics, time.perf_counter() - start, provenance,
                   {"cpu_niceness": niceness})
