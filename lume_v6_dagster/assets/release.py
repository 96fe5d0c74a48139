"""Release assets: Core ML packages -> smoke test -> acceptance report -> release bundle."""

import json
import os
import shlex
from dataclasses import asdict
from pathlib import Path

import dagster as dg
import numpy as np
import torch

from lume_v6_dagster import contract
from lume_v6_dagster.acceptance import gates as gates_mod
from lume_v6_dagster.acceptance.evaluate import Inputs, evaluate
from lume_v6_dagster.acceptance.measure import Pipeline
from lume_v6_dagster.acceptance.thresholds import Thresholds
from lume_v6_dagster.assets.training import load_split, training_run_dir, encoder_flow_v6, san_v6, v5_baseline
from lume_v6_dagster.atomic_files import write_json
from lume_v6_dagster.dataset import load_arrays
from lume_v6_dagster.export.bundle import write_bundle
from lume_v6_dagster.export.coreml import export
from lume_v6_dagster.export.verify import verify
from lume_v6_dagster.resources import ArtifactStore, TrainingHost
from lume_v6_dagster.trained_models import load_encoder_flow, load_san

GROUP = "release"
SMOKE_SAMPLES = 16


def _models(store: ArtifactStore, host: TrainingHost):
    """Every trained module, keyed by package name, plus the split they were trained on."""
    split, paths = load_split(store)
    enc, gen = load_encoder_flow(training_run_dir(store, "encoder_flow_v6", split, host), split.stats)
    enc5, gen5 = load_encoder_flow(training_run_dir(store, "v5_baseline", split, host), split.stats)
    _, twin = load_san(training_run_dir(store, "san_v6", split, host), split.stats)
    modules = {"ConditioningEncoderV6": enc, "FlowGenerator1StepV6": gen, "SANV6": twin,
               "ConditioningEncoderV5": enc5, "FlowGenerator1StepV5": gen5}
    return split, paths, modules


def _package_dir(store: ArtifactStore, split, host: TrainingHost) -> Path:
    return Path(store.root) / "release" / "packages" / f"{split.fingerprint}-{host.profile}-seed{host.seed}"


IO = {**contract.PACKAGES, **contract.V5_PACKAGES}


@dg.asset(group_name=GROUP, deps=[encoder_flow_v6, san_v6, v5_baseline], kinds={"coreml"})
def coreml_packages(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """V6 (and V5 fallback) .mlpackage files: mlprogram, iOS 17, FP16 compute, FP32 I/O."""
    split, _, modules = _models(artifact_store, training_host)
    out = _package_dir(artifact_store, split, training_host)
    sizes = {}
    for name, module in modules.items():
        path = export(module, name, IO[name], out, f"LUME {name} (dataset {split.fingerprint})")
        sizes[name] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        context.log.info(f"exported {path} ({sizes[name] / 1e6:.2f} MB)")
    return dg.MaterializeResult(metadata={"folder": dg.MetadataValue.path(str(out)), **{f"{k}_mb": v / 1e6 for k, v in sizes.items()}})


def _feeds(val: dict, modules: dict, name: str, rng) -> list[dict]:
    """Batch-1 validation inputs for one package (real conditioning, real latents, noise)."""
    rows = rng.choice(len(val["conditioning"]), SMOKE_SAMPLES, replace=False)
    cond = val["conditioning"][rows]
    with torch.no_grad():
        emb = modules["ConditioningEncoderV6"](torch.from_numpy(cond)).numpy()
    source = {"conditioning": cond[:, : IO[name][0][0][1][1]], "embedding": emb,
              "noise": rng.standard_normal((SMOKE_SAMPLES, contract.NOISE_DIM)).astype(np.float32),
              "music_latent": val["latent"][rows], "dynamics": cond[:, contract.DYNAMICS_SLICE]}
    return [{n: np.ascontiguousarray(source[n][i:i + 1]) for n, _ in IO[name][0]} for i in range(SMOKE_SAMPLES)]


@dg.asset(group_name=GROUP, deps=[coreml_packages], kinds={"coreml"})
def smoke_test(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """Load every package back: contract (names, shapes, FP32, iOS 17) and parity on validation inputs."""
    split, paths, modules = _models(artifact_store, training_host)
    val = load_arrays(paths, split.val)
    folder = _package_dir(artifact_store, split, training_host)
    reports = []
    for name, module in modules.items():
        names = [n for n, _ in IO[name][0]]
        reference = lambda m=module, names=names, **kw: m(*[torch.from_numpy(kw[n]) for n in names]).detach().numpy()
        report = verify(folder / f"{name}.mlpackage", IO[name], reference, _feeds(val, modules, name, np.random.default_rng(0)))
        for problem in report.problems:
            context.log.error(problem)
        reports.append(asdict(report))
    write_json(folder / "smoke.json", reports)
    rows = "\n".join(f"| {r['name']} | {r['size_bytes'] / 1e6:.2f} | {', '.join(f'{k} {v:.1e}' for k, v in r['parity'].items())} | {'ok' if not r['problems'] else '; '.join(r['problems'])} |" for r in reports)
    return dg.MaterializeResult(metadata={
        "passed": all(not r["problems"] for r in reports),
        "packages": dg.MetadataValue.md("| package | MB | parity (max rel. diff) | result |\n|---|---|---|---|\n" + rows),
    })


def _history(store, name, split, host) -> tuple[list, dict]:
    doc = json.loads((training_run_dir(store, name, split, host) / "metrics.json").read_text())
    return doc["history"], doc["metrics"]


def _reproduce(host: TrainingHost) -> str:
    env = {k: os.environ[k] for k in ("LUME_CAPTURE_ROOT", "LUME_ARTIFACT_ROOT") if k in os.environ}
    return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + f" LUME_TRAINING_PROFILE={host.profile} dagster job execute -w workspace.yaml -j release"


@dg.asset(group_name=GROUP, deps=[smoke_test], kinds={"html"})
def acceptance_report(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """The 9 gates with measured value, threshold and verdict; Markdown + HTML with plots."""
    split, paths, modules = _models(artifact_store, training_host)
    folder = _package_dir(artifact_store, split, training_host)
    histories, metrics = {}, {}
    for name in ("encoder_flow_v6", "v5_baseline", "san_v6"):
        histories[name], metrics[name] = _history(artifact_store, name, split, training_host)
    provenance = {"run_id": context.run.run_id, "dataset_fingerprint": split.fingerprint, "profile": training_host.profile,
                  "seed": training_host.seed, "train_tracks": len(split.train), "val_tracks": ", ".join(split.val),
                  "reproduce": _reproduce(training_host)}
    pipeline = Pipeline(modules["ConditioningEncoderV6"], modules["FlowGenerator1StepV6"], modules["SANV6"])
    smoke = json.loads((folder / "smoke.json").read_text())
    v6_bytes = sum(r["size_bytes"] for r in smoke if r["name"].endswith("V6"))
    inputs = Inputs(split, paths, pipeline, histories, metrics, smoke, v6_bytes, Path(artifact_store.root) / "listening" / "signoff.json", provenance)
    thresholds = Thresholds.load(Path(artifact_store.root) / "thresholds.json")
    out = Path(artifact_store.root) / "release" / "reports" / context.run.run_id
    gates, flat, md, page = evaluate(inputs, thresholds, out)
    status, use_v6 = gates_mod.decision(gates)
    write_json(out / "gates.json", {"status": status, "useV6Models": use_v6, "gates": [x.as_dict() for x in gates],
                                    "metrics": flat, "provenance": provenance, "thresholds": thresholds.as_dict()})
    context.log.info(f"acceptance: {status}\n{gates_mod.table(gates)}")
    return dg.MaterializeResult(metadata={
        "status": status, "useV6Models": use_v6, "gates": dg.MetadataValue.md(gates_mod.table(gates)),
        "report_html": dg.MetadataValue.path(str(page)), "report_md": dg.MetadataValue.md(md.read_text()),
        **{k: v for k, v in flat.items() if k in ("mode_accuracy", "latency_ms", "sensitivity_ratio_latent")},
    })


@dg.asset(group_name=GROUP, deps=[acceptance_report], kinds={"coreml"})
def release_bundle(context: dg.AssetExecutionContext, artifact_store: ArtifactStore, training_host: TrainingHost) -> dg.MaterializeResult:
    """V6 packages + V5 fallback + manifest.json, in a new folder per run (never overwritten)."""
    split, _ = load_split(artifact_store)
    folder = _package_dir(artifact_store, split, training_host)
    reports = sorted((Path(artifact_store.root) / "release" / "reports").glob("*/gates.json"), key=lambda p: p.stat().st_mtime)
    verdict = json.loads(reports[-1].read_text())
    v5_dir = Path(os.environ.get("LUME_V5_FOLDER", folder))
    manifest = {"useV6Models": verdict["useV6Models"], "status": verdict["status"], "run_ids": {"release": context.run.run_id, "acceptance": verdict["provenance"]["run_id"]},
                "dataset_fingerprint": split.fingerprint, "normalisation": asdict(split.stats), "reproduce": verdict["provenance"]["reproduce"]}
    target = write_bundle(Path(artifact_store.root) / "bundles" / context.run.run_id,
                          [folder / f"{n}.mlpackage" for n in contract.PACKAGES], [v5_dir / f"{n}.mlpackage" for n in contract.V5_PACKAGES], manifest)
    return dg.MaterializeResult(metadata={"bundle": dg.MetadataValue.path(str(target)), "useV6Models": verdict["useV6Models"], "status": verdict["status"]})
