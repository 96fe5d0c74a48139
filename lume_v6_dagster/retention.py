"""Retention: what the artifact root can lose, and removing it (a dry run unless asked).

Kept: the newest N bundles and the one the app installs (`bundles/current.json`), everything
their manifests name (packages, report, the three models' run folders, the split and the pairs
it was computed from), and everything the latest materialization of each asset names. Only
per-run folders and superseded pairs files under the artifact root are ever candidates: the
captures, the sign-off history and the thresholds are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from lume_v6_dagster.dataset import DatasetSplit

MODELS = ("san_v6", "encoder_flow_v6", "v5_baseline")
PER_RUN = ("bundles", "release/packages", "release/listening", "release/reports",
           *(f"training/{m}" for m in MODELS), "training/dataset")
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


@dataclass
class Plan:
    artifacts: Path
    keep_bundles: list[Path]
    remove: list[Path] = field(default_factory=list)
    bytes_freed: int = 0  # of files whose every hard link goes with `remove`
    in_flight: list[str] = field(default_factory=list)  # run ids: removing waits until they end


def _candidates(artifacts: Path) -> list[Path]:
    """Per-run folders and every pairs file: the only things retention may remove."""
    found = [p for sub in PER_RUN if (artifacts / sub).is_dir() for p in sorted((artifacts / sub).iterdir())
             if p.is_dir() and not p.name.startswith(".")]
    return found + sorted((artifacts / "tracks").glob("*/pairs/*.npz"))


def _bundles(instance: dg.DagsterInstance) -> list[Path]:
    """Bundle folders, newest release first, as release_bundle recorded them."""
    records = instance.fetch_materializations(dg.AssetKey("release_bundle"), limit=10_000).records
    return [Path(r.asset_materialization.metadata["bundle"].value) for r in records]


def _split_and_pairs(split_path) -> list[Path]:
    path = Path(split_path)
    if not path.exists():
        return []
    return [path.parent, *(Path(p) for p in DatasetSplit.load(path).pairs_paths.values())]


def _named_by_bundle(bundle: Path, artifacts: Path) -> list[Path]:
    manifest = json.loads((bundle / "manifest.json").read_text()) if (bundle / "manifest.json").exists() else {}
    runs = manifest.get("run_ids", {})
    named = [bundle, artifacts / "release" / "packages" / runs.get("packages", "-"), artifacts / "release" / "reports" / runs.get("acceptance", "-")]
    named += [Path(m["run_dir"]) for m in manifest.get("models", {}).values() if m.get("run_dir")]
    named += [Path(manifest["v5_fallback"]["folder"])] if "v5_fallback" in manifest else []
    if fp := manifest.get("dataset_fingerprint"):
        named += _split_and_pairs(artifacts / "training" / "dataset" / fp / "split.json")
    return named


def _named_by_latest(instance: dg.DagsterInstance) -> list[Path]:
    """What the newest materialization of each asset points at (pairs: each track's pairs.json)."""
    named = []
    for key, fields in (("dataset_split", ("split_path",)), ("coreml_packages", ("folder",)), ("smoke_test", ("packages_folder",)),
                        ("listening_previews", ("folder",)), ("acceptance_report", ("report_html",)), ("release_bundle", ("bundle",)),
                        *((m, ("run_dir", "split_path")) for m in MODELS)):
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        metadata = event.asset_materialization.metadata if event else {}
        for name in fields:
            if name in metadata:
                path = Path(metadata[name].value)
                named += _split_and_pairs(path) if name == "split_path" else [path.parent if path.is_file() else path]
    return named


def _current_pairs(artifacts: Path) -> list[Path]:
    pointers = sorted((artifacts / "tracks").glob("*/pairs.json"))
    return [p.parent / json.loads(p.read_text())["file"] for p in pointers]


def _freed(paths: list[Path]) -> int:
    """Bytes a removal gives back: files whose every hard link is inside `paths` (report media share theirs)."""
    links: dict[tuple[int, int], list] = {}
    for root in paths:
        for f in [root] if root.is_file() else (p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            st = f.stat()
            links.setdefault((st.st_dev, st.st_ino), [st.st_nlink, st.st_size, 0])[2] += 1
    return sum(size for n, size, seen in links.values() if seen >= n)


def plan(instance: dg.DagsterInstance, artifacts: Path, keep: int, captures: Path) -> Plan:
    """What a retention run would remove, keeping the newest `keep` bundles and all they name."""
    if keep < 1:
        raise ValueError(f"--keep {keep}: at least the newest bundle is kept")
    artifacts = Path(artifacts).resolve()
    bundles = [b for b in _bundles(instance) if b.is_dir()][:keep]
    current = artifacts / "bundles" / "current.json"
    if current.exists():
        bundles.append(Path(json.loads(current.read_text())["bundle"]))
    named = [p for b in bundles for p in _named_by_bundle(b, artifacts)] + _named_by_latest(instance) + _current_pairs(artifacts)
    kept = {p.resolve() for p in named} | {Path(captures).resolve()}  # captures: never, wherever they are
    remove = [c for c in _candidates(artifacts) if not any(k == c or c in k.parents or k in c.parents for k in kept)]
    in_flight = [r.run_id for r in instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT))]
    return Plan(artifacts, sorted(set(bundles)), remove, _freed(remove), in_flight)


def apply(p: Plan) -> int:
    """Remove what the plan lists; refused while a run is in flight (its outputs are not recorded yet)."""
    if p.in_flight:
        raise RuntimeError(f"{len(p.in_flight)} run(s) in flight ({', '.join(r[:8] for r in p.in_flight)}): "
                           "their outputs are not recorded yet, so retention waits until they end")
    for path in p.remove:
        if p.artifacts not in path.parents:  # never anything outside the artifact root
            raise RuntimeError(f"{path} is outside {p.artifacts}: not removed")
        shutil.rmtree(path) if path.is_dir() else os.unlink(path)
    return p.bytes_freed
