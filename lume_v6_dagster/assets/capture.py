"""Per-track assets: raw capture -> validated capture -> pairs, with blocking pandera checks."""

import time
import warnings

import dagster as dg
import numpy as np

from lume_v6_dagster import contract
from lume_v6_dagster.capacity import INGEST_POOL
from lume_v6_dagster.atomic_files import write_json
from lume_v6_dagster.capture.folder import file_stats, load_capture, read_capture, fingerprint, schema_violations, sha256_files
from lume_v6_dagster.deployment import where_it_ran
from lume_v6_dagster.pairs import PairsConfig, build_pairs, pairs_violations, publish_pairs
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.resources import ArtifactStore, CaptureStore

GROUP = "capture"
# Partitioned asset checks (each track checked on its own) are a Dagster preview feature, noted
# once per check on every import of this module; the notice changes nothing here.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning)


def _violation_table(violations) -> dg.MetadataValue:
    rows = "\n".join(f"| {v.file} | {v.place} | {v.rule} |" for v in violations[:50])
    return dg.MetadataValue.md(f"| file | place | rule |\n|---|---|---|\n{rows}")


@dg.asset(partitions_def=tracks, group_name=GROUP, pool=INGEST_POOL, kinds={"filesystem"})
def raw_capture(context: dg.AssetExecutionContext, capture_store: CaptureStore, artifact_store: ArtifactStore) -> dg.MaterializeResult:
    """The capture folder as found on disk: checksummed, never modified.

    Once a track has pairs (and so may have been trained on), content that differs from the
    recorded checksums is refused, never silently retrained on. Before that, e.g. after a
    failed run on a broken copy, a retry simply records the new content.
    """
    track = context.partition_key
    folder = capture_store.folder(track)
    stats = file_stats(folder)  # before hashing: a change during the hash shows as moved stats later
    checksums = sha256_files(folder)
    previous = artifact_store.raw_record(track)
    if previous and previous["sha256"] != checksums and artifact_store.pairs_path(track) is not None:
        changed = sorted(k for k in checksums if previous["sha256"].get(k) != checksums[k])
        raise dg.Failure(
            f"{folder}: {', '.join(changed)} changed after the track was ingested; refusing to rebuild it. "
            f"If the new content is intended, delete {artifact_store.raw_record_path(track)} and re-run.",
            metadata={"changed_files": changed},
        )
    record = {"track_id": track, "folder": str(folder), "sha256": checksums, "stats": stats,
              "bytes": {n: size for n, (size, _) in stats.items()},
              "observed_at": previous["observed_at"] if previous else time.time()}
    write_json(artifact_store.raw_record_path(track), record)
    return dg.MaterializeResult(
        metadata={"folder": dg.MetadataValue.path(str(folder)), "sha256": checksums, "bytes": sum(record["bytes"].values()), **where_it_ran()},
        data_version=dg.DataVersion(fingerprint(checksums)),  # content, not mtimes
    )


def _block_stats(dynamics: np.ndarray) -> dg.MetadataValue:
    rows = []
    for b in contract.DYNAMICS_BLOCKS:  # computed before the schema check: may hold NaN/Inf
        x = dynamics[:, contract.block_slice(b)]
        with np.errstate(invalid="ignore"):
            rows.append(f"| {b} | {x.mean():.3f} | {x.std():.3f} | {x.min():.2f} | {x.max():.2f} |")
    return dg.MetadataValue.md("| block | mean | std | min | max |\n|---|---|---|---|---|\n" + "\n".join(rows))


@dg.asset(partitions_def=tracks, group_name=GROUP, pool=INGEST_POOL, deps=[raw_capture], kinds={"numpy"})
def validated_capture(context: dg.AssetExecutionContext, capture_store: CaptureStore) -> dg.MaterializeResult:
    """The capture read against the contract: events, array headers, audio (docs/capture.md)."""
    folder = capture_store.folder(context.partition_key)
    cap, violations = read_capture(folder)
    if cap is None:
        for v in violations:
            context.log.error(str(v))
        raise dg.Failure(f"{folder}: {len(violations)} contract violation(s); first: {violations[0]}",
                         metadata={"violations": _violation_table(violations)})
    s = cap.session
    return dg.MaterializeResult(metadata={
        "frames": len(cap.arrays.t),
        "seconds": float(s.end_t),
        "mode": contract.MODES[s.mode],
        "emotions": [contract.EMOTIONS[s.emotion]] + [contract.EMOTIONS[e] for _, e in s.emotion_changes],
        "dropouts": len(s.dropouts),
        "audio_rate": cap.audio_rate,
        "block_stats": _block_stats(cap.arrays.dynamics),
        **where_it_ran(),
    })


@dg.asset_check(asset=validated_capture, blocking=True, partitions_def=tracks)
def dynamics_schema(context: dg.AssetCheckExecutionContext, capture_store: CaptureStore) -> dg.AssetCheckResult:
    """pandera: t increasing, confidence in [0, 1], every dynamics dim finite and |x| <= 100."""
    cap, _ = read_capture(capture_store.folder(context.partition_key))
    violations = schema_violations(cap)
    return dg.AssetCheckResult(passed=not violations, metadata={"violations": len(violations), "details": _violation_table(violations)})


@dg.asset(partitions_def=tracks, group_name=GROUP, pool=INGEST_POOL, deps=[validated_capture], kinds={"numpy"})
def track_pairs(context: dg.AssetExecutionContext, capture_store: CaptureStore, artifact_store: ArtifactStore) -> dg.MaterializeResult:
    """30 Hz training pairs for one track (docs/pairs_and_models.md): an NPZ named by its digest, written once."""
    track = context.partition_key
    pairs = build_pairs(load_capture(capture_store.folder(track)), PairsConfig())
    pairs.checksums = (artifact_store.raw_record(track) or {}).get("sha256", {})
    path, digest = publish_pairs(artifact_store.pairs_versions(track), artifact_store.pairs_pointer(track), pairs)
    return dg.MaterializeResult(
        metadata={**pairs.stats, "path": dg.MetadataValue.path(str(path)), "sha256": digest, **where_it_ran()},
        data_version=dg.DataVersion(digest[:16]),
    )


@dg.asset_check(asset=track_pairs, blocking=True, partitions_def=tracks)
def pairs_schema(context: dg.AssetCheckExecutionContext, artifact_store: ArtifactStore) -> dg.AssetCheckResult:
    """pandera: one-hots exact (reserved modes 0), targets finite, t increasing."""
    violations = pairs_violations(artifact_store.pairs_path(context.partition_key))
    return dg.AssetCheckResult(passed=not violations, metadata={"violations": len(violations), "details": _violation_table(violations)})
