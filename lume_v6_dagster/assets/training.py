"""Fan-in training assets: dataset split + statistics, SAN V6 (MLX), encoder + flow V6, V5 baseline."""

import time
from pathlib import Path

import dagster as dg
import torch

from lume_v6_dagster import contract, plots
from lume_v6_dagster.assets.capture import track_pairs
from lume_v6_dagster.atomic_files import atomic_path, write_json
from lume_v6_dagster.capture.folder import stat_fingerprint
from lume_v6_dagster.dataset import DatasetSplit, build_split, load_arrays
from lume_v6_dagster.pairs import pairs_violations
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore, TrainingHost
from lume_v6_dagster.training.flow_training import train_flow
from lume_v6_dagster.training.profiles import get_profile
from lume_v6_dagster.training.san_training import train_san

GROUP = "training"
POOL = "training"  # size 1 (dagster.yaml): one training asset at a time on the host
V5_TRAIN_TRACKS = 2


def _usable_pairs(instance, capture_store: CaptureStore, artifact_store: ArtifactStore):
    """Pairs files of every track, minus those changed on disk since ingest or failing the schema."""
    paths, excluded = {}, {}
    for track in instance.get_dynamic_partitions(tracks.name):
        path = artifact_store.pairs_path(track)
        record = artifact_store.raw_record(track)
        folder = capture_store.folder(track)
        if not path.exists() or record is None:
            excluded[track] = "no pairs yet"
        elif not folder.exists() or stat_fingerprint(folder)[0] != record["fingerprint"]:
            excluded[track] = "capture changed after ingest"
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
    """Cross-track split, training-only normalisation statistics and the dataset fingerprint."""
    paths, excluded = _usable_pairs(context.instance, capture_store, artifact_store)
    for track, reason in excluded.items():
        context.log.warning(f"{track}: excluded ({reason})")
    split = build_split(paths, excluded)
    split.save(artifact_store.training_dir("dataset") / "split.json")
    return dg.MaterializeResult(
        metadata={"fingerprint": split.fingerprint, "train_tracks": len(split.train), "val_tracks": len(split.val),
                  "val_ids": ", ".join(split.val), "excluded": len(excluded), "train_pairs": split.stats.n,
                  "coverage_minutes": _coverage_table(split.coverage_minutes)},
        data_version=dg.DataVersion(split.fingerprint),
    )


def load_split(artifact_store: ArtifactStore):
    split = DatasetSplit.load(artifact_store.training_dir("dataset") / "split.json")
    paths = {t: artifact_store.pairs_path(t) for t in split.train + split.val}
    return split, paths


def training_run_dir(artifact_store: ArtifactStore, name: str, split: DatasetSplit, host: TrainingHost) -> Path:
    """Checkpoints are keyed by dataset, profile and seed: a new dataset never resumes an old run."""
    return artifact_store.training_dir(name) / f"{split.fingerprint}-{host.profile}-seed{host.seed}"


def _result(context, name: str, run_dir: Path, history: list[dict], metrics: dict, seconds: float) -> dg.MaterializeResult:
    plot = plots.loss_curves({name: history}, run_dir / "loss.png")
    write_json(run_dir / "metrics.json", {"metrics": metrics, "history": history, "seconds": seconds})
    table = "| epoch | train | val |\n|---|---|---|\n" + "\n".join(f"| {r['epoch']} | {r['train_loss']:.4f} | {r['val_loss']:.4f} |" for r in history)
    return dg.MaterializeResult(metadata={
        **{k: float(v) for k, v in metrics.items()},
        "train_seconds": round(seconds, 1),
        "run_dir": dg.MetadataValue.path(str(run_dir)),
        "loss_plot": dg.MetadataValue.path(str(plot)),
        "curve": dg.MetadataValue.md(table),
    })


def _train_encoder_flow(context, artifact_store, host, name: str, in_dim: int, train_ids=None):
    host.setup()
    split, paths = load_split(artifact_store)
    train_ids = train_ids or split.train
    run_dir = training_run_dir(artifact_store, name, split, host)
    start = time.perf_counter()
    result = train_flow(load_arrays(paths, train_ids), load_arrays(paths, split.val), split.stats, get_profile(host.profile),
                        host.seed, run_dir / "checkpoints", in_dim, log=context.log.info, device=host.torch_device())
    with atomic_path(run_dir / "model.pt", suffix=".pt") as tmp:
        torch.save({"encoder": result.encoder.state_dict(), "flow": result.flow.state_dict(), "in_dim": in_dim,
                    "train_tracks": train_ids, "fingerprint": split.fingerprint}, tmp)
    return _result(context, name, run_dir, result.history, result.metrics, time.perf_counter() - start)


@dg.asset(group_name=GROUP, deps=[dataset_split], pool=POOL, kinds={"pytorch"})
def encoder_flow_v6(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """ConditioningEncoder V6 (141 -> 768) + one-step FlowGenerator V6, trained jointly (MeanFlow)."""
    return _train_encoder_flow(context, artifact_store, training_host, "encoder_flow_v6", contract.CONDITIONING_DIM)


@dg.asset(group_name=GROUP, deps=[dataset_split], pool=POOL, kinds={"pytorch"})
def v5_baseline(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """The V5 recipe: first 64 dims only, no mode/emotion, 2 training tracks; same validation tracks.

    It shares V6's latent normalisation so both models are scored in the same units.
    """
    split, _ = load_split(artifact_store)
    return _train_encoder_flow(context, artifact_store, training_host, "v5_baseline", contract.V5_DYNAMICS_DIM,
                               train_ids=sorted(split.train)[:V5_TRAIN_TRACKS])


@dg.asset(group_name=GROUP, deps=[dataset_split], pool=POOL, kinds={"mlx"})
def san_v6(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """SAN V6 in MLX: music latent + 128-D dynamics -> 16 controls, cross-track validated."""
    split, paths = load_split(artifact_store)
    run_dir = training_run_dir(artifact_store, "san_v6", split, training_host)
    start = time.perf_counter()
    result = train_san(load_arrays(paths, split.train), load_arrays(paths, split.val), split.stats,
                       get_profile(training_host.profile), training_host.seed, run_dir / "checkpoints", log=context.log.info)
    with atomic_path(run_dir / "model.safetensors", suffix=".safetensors") as tmp:
        result.model.save_weights(str(tmp))
    return _result(context, "san_v6", run_dir, result.history, result.metrics, time.perf_counter() - start)
