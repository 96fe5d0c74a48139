"""Release assets: Core ML packages -> smoke test -> acceptance report -> release bundle.

Every asset finds the models, packages and verdicts it works on from what its upstream
recorded (`upstream.recorded`), never from paths re-derived from today's environment, and
the bundle ships only packages whose digests the acceptance report judged.
"""

import json
import os
import shlex
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import torch
import yaml

from lume_v6_dagster import capacity, code_version, contract, listening, plots
from lume_v6_dagster.acceptance import champion as champion_mod
from lume_v6_dagster.acceptance import gates as gates_mod
from lume_v6_dagster.acceptance.evaluate import Inputs, evaluate
from lume_v6_dagster.acceptance.measure import Pipeline
from lume_v6_dagster.acceptance.thresholds import Thresholds
from lume_v6_dagster.assets.training import V5_TRAIN_TRACKS, encoder_flow_v6, san_v6, v5_baseline
from lume_v6_dagster.assets.upstream import recorded, recorded_in_run, recorded_where
from lume_v6_dagster.atomic_files import atomic_path, write_json
from lume_v6_dagster.dataset import DatasetSplit, load_arrays
from lume_v6_dagster.deployment import where_it_ran
from lume_v6_dagster.export.bundle import package_digest, write_bundle
from lume_v6_dagster.noise import NoiseProcess
from lume_v6_dagster.resources import ArtifactStore
from lume_v6_dagster.trained_models import load_encoder_flow, load_san
from lume_v6_dagster.training.profiles import get_profile

GROUP = "release"
TRAIN_COMMAND = "dagster job execute -m lume_v6_dagster.definitions -j train"  # through the job's executor
SMOKE_SAMPLES = 16
TRAINED = ("encoder_flow_v6", "v5_baseline", "san_v6")
IO = {**contract.PACKAGES, **contract.V5_PACKAGES}
CHARTED = ("encoder_flow_v6.val_loss", "encoder_flow_v6.fd_1step", "encoder_flow_v6.fd_16step", "encoder_flow_v6.fd_ratio",
           "v5_baseline.val_loss", "san_v6.val_loss", "mode_accuracy", "sensitivity_ratio_latent", "sensitivity_ratio_controls", "latency_ms")
# What a trained model's materialization records and the release carries forward.
PROVENANCE_KEYS = ("run_id", "run_dir", "split_path", "dataset_fingerprint", "profile", "seed", "device", "threads", "code_version",
                   "determinism", "worker", "host", "weights_sha256", "noise_process")
ONE_SET = ("dataset_fingerprint", "profile", "seed", "code_version")  # what the three models of one release share


@dataclass
class Trained:
    """The three trained models, as their assets recorded them, on one dataset."""

    records: dict[str, dict]  # asset name -> provenance
    split: DatasetSplit
    modules: dict[str, torch.nn.Module]  # package name -> module
    noise: dict[str, NoiseProcess]  # asset name -> the noise process its generator ships with


def one_set(records: dict[str, dict]) -> list[str]:
    """Why the recorded models are not one release (empty if they are): one dataset, recipe, seed and model code, this code's."""
    problems = []
    for key in ONE_SET:
        values = {name: r.get(key) for name, r in records.items()}
        if len({str(v) for v in values.values()}) != 1:
            problems.append(f"{key} differs ({', '.join(f'{n}: {v}' for n, v in values.items())})")
    if not problems and (made_by := records["encoder_flow_v6"].get("code_version")) != code_version.model_code_version():
        problems.append(f"the models were trained by model code {made_by}, and this code is {code_version.model_code_version()}")
    return problems


def _trained(records: dict[str, dict]) -> Trained:
    """Load the recorded models; refuse any set that is not one coherent release."""
    if problems := one_set(records):
        raise dg.Failure(f"the trained models are not one set: {'; '.join(problems)}. Re-run the `train` job so all three "
                         "are trained together, on one split, by this code", metadata={"models": dg.MetadataValue.json(records)})
    split = DatasetSplit.load(Path(records["encoder_flow_v6"]["split_path"]))
    enc, gen, noise6 = load_encoder_flow(Path(records["encoder_flow_v6"]["run_dir"]), split.stats)
    enc5, gen5, noise5 = load_encoder_flow(Path(records["v5_baseline"]["run_dir"]), split.stats)
    _, twin = load_san(Path(records["san_v6"]["run_dir"]), split.stats)
    modules = {"ConditioningEncoderV6": enc, "FlowGenerator1StepV6": gen, "SANV6": twin,
               "ConditioningEncoderV5": enc5, "FlowGenerator1StepV5": gen5}
    noise = {"encoder_flow_v6": noise6, "v5_baseline": noise5}
    for name, process in noise.items():  # the weights file states its noise; the record must say the same
        if NoiseProcess.from_dict(records[name].get("noise_process")) != process:
            raise dg.Failure(f"{records[name]['run_dir']}/model.pt ships noise {process.as_dict()}, but {name}'s record says "
                             f"{records[name].get('noise_process')}: re-run the `train` job")
    return Trained(records, split, modules, noise)


def _exported(context) -> tuple[dict, Trained]:
    """coreml_packages' record and the models it exported."""
    packages = recorded(context, "coreml_packages")
    return packages, _trained(packages["models"])


def _digests(folder: Path, names) -> dict[str, str]:
    return {name: package_digest(Path(folder) / f"{name}.mlpackage") for name in names}


@dg.asset(group_name=GROUP, deps=[encoder_flow_v6, san_v6, v5_baseline], kinds={"coreml"})
def coreml_packages(context: dg.AssetExecutionContext, artifact_store: ArtifactStore) -> dg.MaterializeResult:
    """V6 (and V5 fallback) .mlpackage files: mlprogram, iOS 17, FP16 compute, FP32 I/O.

    Written to a new folder per run, so a smoke test or report in flight never sees them change.
    """
    from lume_v6_dagster.export.coreml import export  # coremltools: 2 s to import, so only in the steps that use it

    records = {name: {k: v for k, v in recorded(context, name).items() if k in PROVENANCE_KEYS} for name in TRAINED}
    trained = _trained(records)
    out = Path(artifact_store.root) / "release" / "packages" / context.run.run_id
    sizes = {}
    for name, module in trained.modules.items():
        path = export(module, name, IO[name], out, f"LUME {name} (dataset {trained.split.fingerprint})")
        sizes[name] = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        context.log.info(f"exported {path} ({sizes[name] / 1e6:.2f} MB)")
    return dg.MaterializeResult(metadata={**where_it_ran(),
        "folder": dg.MetadataValue.path(str(out)), "dataset_fingerprint": trained.split.fingerprint,
        "models": dg.MetadataValue.json(records), "packages_sha256": dg.MetadataValue.json(_digests(out, IO)),
        **{f"{k}_mb": v / 1e6 for k, v in sizes.items()},
    })


def v5_fallback(packages: dict) -> dict:
    """The V5 the bundle ships as the app's fallback: where it comes from, its digests, its contract problems.

    `LUME_V5_FOLDER` (the V5 on the phone) when set, else the V5 recipe retrained in this chain;
    recorded here, so the report and the bundle use what was checked, not today's environment.
    """
    from lume_v6_dagster.export.verify import check_contract

    configured = os.environ.get("LUME_V5_FOLDER")
    if not configured:
        run = packages["models"]["v5_baseline"]["run_id"]
        return {"source": f"the V5 recipe retrained in this chain (v5_baseline run {run[:8]}, {V5_TRAIN_TRACKS} training tracks); "
                          "LUME_V5_FOLDER is not set", "folder": packages["folder"], "configured": False,
                "packages_sha256": {n: packages["packages_sha256"][n] for n in contract.V5_PACKAGES}, "reports": []}
    folder, reports, digests = Path(configured), [], {}
    for name, io in contract.V5_PACKAGES.items():
        path = folder / f"{name}.mlpackage"
        report = {"name": f"{name} (V5 fallback)", "path": str(path), "size_bytes": 0, "parity": {}, "problems": []}
        try:
            report["problems"] = check_contract(path, io)
            digests[name] = package_digest(path)
        except Exception as e:  # missing or unreadable: a contract problem with the reason, never a crash
            report["problems"] = [f"{path}: cannot be read as a Core ML package ({type(e).__name__}: {e})"]
        reports.append(report)
    return {"source": f"the configured folder {folder} (LUME_V5_FOLDER)", "folder": str(folder), "configured": True,
            "packages_sha256": digests, "reports": reports}


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
def smoke_test(context: dg.AssetExecutionContext, artifact_store: ArtifactStore) -> dg.MaterializeResult:
    """Load every package back: contract (names, shapes, FP32, iOS 17) and parity on validation inputs."""
    from lume_v6_dagster.export.verify import verify

    packages, trained = _exported(context)
    val = load_arrays(trained.split, trained.split.val)
    folder = Path(packages["folder"])
    reports = []
    for name, module in trained.modules.items():
        names = [n for n, _ in IO[name][0]]
        reference = lambda m=module, names=names, **kw: m(*[torch.from_numpy(kw[n]) for n in names]).detach().numpy()
        report = verify(folder / f"{name}.mlpackage", IO[name], reference, _feeds(val, trained.modules, name, np.random.default_rng(0)))
        for problem in report.problems:
            context.log.error(problem)
        reports.append(asdict(report))
    fallback = v5_fallback(packages)
    reports += fallback.pop("reports")  # contract only: a configured fallback has no source model to compare with
    write_json(folder / "smoke.json", reports)
    gate = gates_mod.export_parity(reports, Thresholds.load(Path(artifact_store.root) / "thresholds.json"))
    rows = "\n".join(f"| {r['name']} | {r['size_bytes'] / 1e6:.2f} | {', '.join(f'{k} {v:.1e}' for k, v in r['parity'].items())} | {'ok' if not r['problems'] else '; '.join(r['problems'])} |" for r in reports)
    return dg.MaterializeResult(metadata={**where_it_ran(),
        "passed": gate.verdict == gates_mod.PASS, "result": gate.measured,
        "smoke_path": dg.MetadataValue.path(str(folder / "smoke.json")), "packages_folder": dg.MetadataValue.path(str(folder)),
        "v5_fallback": dg.MetadataValue.json(fallback),
        "packages": dg.MetadataValue.md("| package | MB | parity (max rel. diff) | result |\n|---|---|---|---|\n" + rows),
    })


class PreviewConfig(dg.Config):
    seconds: float | None = None  # length of each clip [the models' profile's preview_seconds]
    seed: int = 0


@dg.asset(group_name=GROUP, deps=[coreml_packages], kinds={"audio"})
def listening_previews(context: dg.AssetExecutionContext, config: PreviewConfig, artifact_store: ArtifactStore) -> dg.MaterializeResult:
    """What a person listens to before signing gate 9: every mode and emotion through the exported one-step path.

    One held-out body sequence (a validation track) per clip, with the V5 fallback and the
    track's own music through the same mel round trip for comparison.
    """
    packages, trained = _exported(context)
    track = trained.split.val[0]
    out = Path(artifact_store.root) / "release" / "listening" / context.run.run_id
    m = trained.modules
    seconds = config.seconds or get_profile(trained.records["encoder_flow_v6"]["profile"]).preview_seconds
    clips = listening.render(out, trained.split.read(track), (m["ConditioningEncoderV6"], m["FlowGenerator1StepV6"], trained.noise["encoder_flow_v6"]),
                             (m["ConditioningEncoderV5"], m["FlowGenerator1StepV5"], trained.noise["v5_baseline"]), seconds=seconds, seed=config.seed,
                             workers=listening.inversion_workers(seconds, capacity.helper_processes()))
    shown = [c for c in clips if (c.name.startswith("v6-") and "emotion" not in c.name) or c.name == "reference"]
    return dg.MaterializeResult(metadata={**where_it_ran(),
        "folder": dg.MetadataValue.path(str(out)), "clips": len(clips), "seconds": seconds, "track": track,
        "packages_sha256": dg.MetadataValue.json(packages["packages_sha256"]),
        "spectrograms": dg.MetadataValue.md("\n\n".join(plots.markdown_image(out / c.spectrogram, c.name) for c in shown)),
    })


def _histories(records: dict[str, dict]) -> tuple[dict, dict]:
    docs = {name: json.loads((Path(r["run_dir"]) / "metrics.json").read_text()) for name, r in records.items()}
    return {n: d["history"] for n, d in docs.items()}, {n: d["metrics"] for n, d in docs.items()}


def training_config(profile: str, seed: int, device: str = "auto", threads: int = 1) -> dict:
    """Run config that fixes the training host's profile, seed, device and threads.

    It travels with the run to whichever worker trains, unlike environment variables of the
    machine that launches it.
    """
    return {"resources": {"training_host": {"config": {"profile": profile, "seed": seed, "device": device, "threads": threads}}}}


def _reproduce(v6: dict, out: Path) -> str:
    """The command that retrains these models: the training job, same profile, seed, device and threads, same data and code."""
    config = out / "reproduce.yaml"
    with atomic_path(config) as tmp:
        tmp.write_text(yaml.safe_dump(training_config(v6["profile"], v6["seed"], v6.get("device", "auto"), v6.get("threads", 1))))
    env = {k: os.environ[k] for k in ("LUME_CAPTURE_ROOT", "LUME_ARTIFACT_ROOT") if k in os.environ}
    return (" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + f" {TRAIN_COMMAND} -c {shlex.quote(str(config))}"
            f"  # with model code {v6.get('code_version')} (python -m lume_v6_dagster.code_version) on the same pairs: "
            f"dataset_split must report fingerprint {v6['dataset_fingerprint']}")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another disk, or a file system without hard links
        shutil.copy2(src, dst)


def _report_media(previews: dict, out: Path) -> dict:
    """Hard-link the clips and spectrograms into <report>/listening/: the report folder stands alone, the bytes are shared."""
    shutil.copytree(previews["folder"], out / "listening", dirs_exist_ok=True, copy_function=_link_or_copy)
    return json.loads((out / "listening" / "previews.json").read_text())


def _champion(instance: dg.DagsterInstance, v6_sha256: dict[str, str]) -> champion_mod.Champion | None:
    """The newest released bundle of other V6 packages, as release_bundle recorded it."""
    def bundles():
        for r in instance.fetch_materializations(dg.AssetKey("release_bundle"), limit=100).records:
            bundle = Path(r.asset_materialization.metadata["bundle"].value)
            if (bundle / "manifest.json").exists():
                yield r.run_id, bundle, json.loads((bundle / "manifest.json").read_text())
    return champion_mod.newest(bundles(), v6_sha256)


def _heard(previews: dict, trained: Trained) -> dict:
    """The previews, refused unless their clips were drawn with the noise process these models ship with."""
    shipped = trained.noise["encoder_flow_v6"].as_dict()
    if previews.get("noise", {}).get("V6") != shipped:
        raise dg.Failure(f"the listening previews were drawn with noise {previews.get('noise', {}).get('V6')}, not the "
                         f"{shipped} these models ship with: materialize listening_previews for these packages")
    return previews


class JudgeConfig(dg.Config):
    packages_run_id: str = ""  # judge the packages that run exported (a sign-off re-judges what was heard); default: the latest


def _to_judge(context, config: JudgeConfig) -> tuple[dict, dict, dict]:
    """(packages, their smoke test, their listening previews): the newest of each that are of these very packages."""
    if config.packages_run_id:
        packages = recorded_in_run(context, "coreml_packages", config.packages_run_id)
    else:
        packages = recorded(context, "coreml_packages")
    what = f"the packages in {packages['folder']}"
    smoke = recorded_where(context, "smoke_test", lambda m: m["packages_folder"] == packages["folder"], what)
    previews = recorded_where(context, "listening_previews", lambda m: m["packages_sha256"] == packages["packages_sha256"], what)
    return packages, smoke, previews


@dg.asset(group_name=GROUP, deps=[smoke_test, listening_previews], kinds={"html"})
def acceptance_report(context: dg.AssetExecutionContext, config: JudgeConfig, artifact_store: ArtifactStore) -> dg.MaterializeResult:
    """The 9 gates with measured value, threshold and verdict, the listening previews, plots; Markdown + HTML."""
    packages, smoke, previews = _to_judge(context, config)
    trained = _trained(packages["models"])
    fallback = smoke["v5_fallback"]
    histories, metrics = _histories(trained.records)
    v6 = trained.records["encoder_flow_v6"]
    provenance = {"run_id": context.run.run_id, "dataset_fingerprint": trained.split.fingerprint, "profile": v6["profile"],
                  "seed": v6["seed"], "train_tracks": len(trained.split.train), "val_tracks": ", ".join(trained.split.val),
                  "model code": v6["code_version"], "judging code": code_version.judging_code_version(), "V5 fallback (ships)": fallback["source"],
                  **{f"determinism ({name})": r["determinism"] for name, r in trained.records.items()},
                  **{f"trained on ({name})": f"{r['worker']} (host {r['host']})" for name, r in trained.records.items()},
                  }
    out = Path(artifact_store.root) / "release" / "reports" / context.run.run_id
    provenance["reproduce"] = _reproduce(v6, out)
    m = trained.modules
    reports = json.loads(Path(smoke["smoke_path"]).read_text())
    v6_sha256 = {n: d for n, d in packages["packages_sha256"].items() if n in contract.PACKAGES}
    inputs = Inputs(trained.split, Pipeline(m["ConditioningEncoderV6"], m["FlowGenerator1StepV6"], m["SANV6"]),
                    (m["ConditioningEncoderV5"], m["FlowGenerator1StepV5"]), trained.noise, histories, metrics, reports,
                    sum(r["size_bytes"] for r in reports if r["name"].endswith("V6")), v6_sha256, Path(artifact_store.root),
                    _heard(_report_media(previews, out), trained), provenance, _champion(context.instance, v6_sha256), get_profile(v6["profile"]))
    thresholds = Thresholds.load(Path(artifact_store.root) / "thresholds.json")
    with capacity.threads_beside(capacity.overlap(), 1, "report") as beside:
        result = evaluate(inputs, thresholds, out, beside)
    status, use_v6 = gates_mod.decision(result.gates, result.comparison.blocks)
    write_json(out / "gates.json", {"status": status, "useV6Models": use_v6, "gates": [x.as_dict() for x in result.gates],
                                    "metrics": result.metrics, "provenance": provenance, "thresholds": thresholds.as_dict(),
                                    "threshold_overrides": thresholds.overrides(), "champion": result.comparison.as_dict(),
                                    "packages_folder": packages["folder"], "packages_sha256": packages["packages_sha256"],
                                    "packages_run_id": packages["run_id"], "models": trained.records, "v5_fallback": fallback})
    context.log.info(f"champion: {result.comparison.state}: {result.comparison.reason}")
    context.log.info(f"acceptance: {status}\n{gates_mod.table(result.gates)}")
    return dg.MaterializeResult(metadata={**where_it_ran(),
        "status": status, "useV6Models": use_v6, "gates": dg.MetadataValue.md(gates_mod.table(result.gates)),
        "champion": f"{result.comparison.state}: {result.comparison.reason}",
        "dataset_fingerprint": trained.split.fingerprint, "judging_code_version": provenance["judging code"],
        "packages_folder": dg.MetadataValue.path(packages["folder"]),
        "packages_sha256": dg.MetadataValue.json(packages["packages_sha256"]), "gates_json": dg.MetadataValue.path(str(out / "gates.json")),
        "report_html": dg.MetadataValue.path(str(result.page)),
        "plots": dg.MetadataValue.md("\n\n".join(f"**{title}**\n\n{plots.markdown_image(path, title)}" for title, path in result.figures.items())),
        **{k.replace(".", "_"): result.metrics[k] for k in CHARTED},  # plain numbers: the UI charts them across runs
    })


def _judged_by_this_code(gates: dict, verdict: dict) -> str:
    """The judging code version of the verdict, refused unless it is this checkout's: a verdict older gates gave is not shipped."""
    judged_by, now = gates["provenance"].get("judging code"), code_version.judging_code_version()
    if judged_by != now:
        raise dg.Failure(f"the acceptance report (run {verdict['run_id'][:8]}) was judged by judging code {judged_by}, and this code is "
                         f"{now}: materialize acceptance_report with this code first (the `release` or `judge` job)")
    return now


def _unchanged(folder: Path, judged: dict[str, str], what: str, verdict: dict) -> None:
    """Refuse to ship packages whose digests are not the ones the report judged."""
    now = _digests(folder, judged)
    if differ := sorted(n for n in judged if now[n] != judged[n]):
        raise dg.Failure(f"{what} in {folder} changed after the acceptance report (run {verdict['run_id'][:8]}) judged them "
                         f"(differing: {', '.join(differ)}): materialize acceptance_report for these packages first")


@dg.asset(group_name=GROUP, deps=[acceptance_report], kinds={"coreml"})
def release_bundle(context: dg.AssetExecutionContext, artifact_store: ArtifactStore) -> dg.MaterializeResult:
    """V6 packages + V5 fallback + manifest.json, in a new folder per run (never overwritten).

    It ships exactly what the acceptance report judged: the packages folder, models and fallback
    the report recorded, each package re-digested and refused if it changed since, and only a
    verdict this checkout's judging code gave.
    """
    verdict = recorded(context, "acceptance_report")
    gates = json.loads(Path(verdict["gates_json"]).read_text())
    judged_by = _judged_by_this_code(gates, verdict)
    folder, fallback, models = Path(gates["packages_folder"]), gates["v5_fallback"], gates["models"]
    v6_sha256 = {n: d for n, d in gates["packages_sha256"].items() if n in contract.PACKAGES}
    _unchanged(folder, v6_sha256, "the V6 packages", verdict)
    _unchanged(Path(fallback["folder"]), fallback["packages_sha256"], "the V5 fallback", verdict)
    split = DatasetSplit.load(Path(models["encoder_flow_v6"]["split_path"]))
    comparison = gates["champion"]
    manifest = {"useV6Models": gates["useV6Models"], "status": gates["status"],
                "run_ids": {"release": context.run.run_id, "acceptance": verdict["run_id"], "packages": gates["packages_run_id"],
                            **{name: r["run_id"] for name, r in models.items()}},
                "packages_sha256": v6_sha256,
                "models": {name: {k: r.get(k) for k in ("run_id", "run_dir", "weights_sha256", "profile", "seed", "device", "threads", "code_version")}
                           for name, r in models.items()},
                "code_version": models["encoder_flow_v6"]["code_version"], "judging_code_version": judged_by,
                "noise_process": {"FlowGenerator1StepV6": models["encoder_flow_v6"]["noise_process"],
                                  "per_frame": "draw z[t] once per frame at rate_hz by its `update`, with the jump and rho of the session's mode, "
                                               "from z[0] ~ N(0, I) at the session's start, and feed it as FlowGenerator1StepV6's `noise`"},
                "v5_fallback": {k: fallback[k] for k in ("source", "folder", "configured", "packages_sha256")},
                "tracks": {"train": split.train, "val": split.val},
                "champion": comparison, "threshold_overrides": gates["threshold_overrides"],
                "dataset_fingerprint": split.fingerprint, "normalisation": asdict(split.stats), "reproduce": gates["provenance"]["reproduce"]}
    if comparison["blocks"]:
        manifest["app_keeps"] = comparison["champion"]["bundle"]
    bundles = Path(artifact_store.root) / "bundles"
    target = write_bundle(bundles / context.run.run_id, [folder / f"{n}.mlpackage" for n in contract.PACKAGES],
                          [Path(fallback["folder"]) / f"{n}.mlpackage" for n in contract.V5_PACKAGES], manifest)
    if gates["useV6Models"]:  # what the app installs: the champion until a challenger is released
        write_json(bundles / "current.json", {"bundle": str(target), "release_run_id": context.run.run_id, "status": gates["status"],
                                             "packages_sha256": v6_sha256})
    return dg.MaterializeResult(metadata={**where_it_ran(), "bundle": dg.MetadataValue.path(str(target)), "useV6Models": gates["useV6Models"],
                                          "status": gates["status"], "champion": f"{comparison['state']}: {comparison['reason']}"})
