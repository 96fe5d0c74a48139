"""Measure, gate and report: everything the acceptance report states, from trained artifacts."""

from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lume_v6_dagster import contract, plots, temporal
from lume_v6_dagster.acceptance import champion as champion_mod
from lume_v6_dagster.acceptance import gates as g
from lume_v6_dagster.acceptance import measure, report, signoff
from lume_v6_dagster.acceptance.markup import escape
from lume_v6_dagster.acceptance.thresholds import Thresholds
from lume_v6_dagster.capacity import Inline
from lume_v6_dagster.dataset import DatasetSplit, compute_stats, load_arrays
from lume_v6_dagster.training.flow_training import RECIPE_NAME
from lume_v6_dagster.training.profiles import Profile


@dataclass
class Inputs:
    split: DatasetSplit  # reads each track's pairs verified against its recorded digest
    pipeline: measure.Pipeline
    v5: tuple  # (encoder, one-step generator) of the V5 recipe, judged on the same validation tracks
    noise: dict  # "encoder_flow_v6" / "v5_baseline" -> the NoiseProcess each generator ships with
    histories: dict[str, list[dict]]
    metrics: dict[str, dict]  # model name -> final metrics
    smoke: list[dict]  # PackageReport dicts
    v6_package_bytes: int
    v6_sha256: dict[str, str]  # package name -> digest: what the human records must be for
    artifacts: Path  # where the human records live (listening/)
    previews: dict  # previews.json of listening_previews; its clips sit in <report>/listening/
    provenance: dict
    champion: champion_mod.Champion | None  # the V6 on the phone, if one was released
    profile: Profile  # the models' training profile: how many frames and windows the report reads


@dataclass
class Evaluation:
    gates: list[g.Gate]
    metrics: dict[str, float]
    figures: dict[str, Path]  # title -> PNG in the report folder
    markdown: Path
    page: Path
    comparison: champion_mod.Comparison


def one_step_section(m: dict) -> str:
    """FD of the shipped 1-step path against the 16-step sampler, with intervals, overall and per mode."""
    rows = [f"| {label} | {m[k]:.3f} | {m[k + '_lo']:.3f} - {m[k + '_hi']:.3f} |" for label, k in
            (("1 step (shipped: FlowGenerator1Step)", "fd_1step"), ("16 steps (same network)", "fd_16step"))]
    modes = [f"| {mode} | {m.get(f'fd_1step_{mode}', float('nan')):.3f} | {m.get(f'fd_16step_{mode}', float('nan')):.3f} |" for mode in contract.MODES]
    return "\n".join([
        f"Frechet distance to the real validation latents (normalised units, lower is better) on a fixed set of "
        f"{int(m['fd_samples'])} validation frames (evenly strided, fixed noise); interval: 90% bootstrap over those frames. "
        f"Training recipe: `{RECIPE_NAME}` (the ablation's winner, docs/one_step.md).", "",
        "| sampler | FD | 90% interval |", "|---|---|---|", *rows, f"| ratio 1-step / 16-step | {m['fd_ratio']:.3f} | |", "",
        "| mode | FD 1-step | FD 16-step |", "|---|---|---|", *modes])


TAGS = {"V6 1-step (shipped)": "v6", "V6 16-step": "v6_16step", "V5 recipe": "v5", "training music": "training", "real vs real": "real"}


def over_time_section(rows: dict[str, dict], process) -> str:
    """Windows of validation frames generated one after another, against the real music of the same windows."""
    some = next(iter(rows.values()))
    table = [f"| {name} | {r['change_ratio']:.2f} | {r['level_change_ratio']:.2f} | {r['lag1']:.3f} ({r['lag1_real']:.3f}) | {_lag1_gap(r)} | {r['lag8']:.3f} ({r['lag8_real']:.3f}) | "
             f"{r['spread_ratio']:.2f} | {r['frame_fd']:.2f} | {r['sequence_fd']:.2f}" + (f" ({r['sequence_fd_lo']:.2f} - {r['sequence_fd_hi']:.2f})" if np.isfinite(r["sequence_fd_lo"]) else "")
             + " |" for name, r in rows.items()]
    return "\n".join([
        f"{int(some['windows'])} windows of {measure.OVER_TIME_SECONDS:.0f} s of validation tracks, generated frame after frame at the "
        f"pair rate with each model's own noise process (V6, per mode: {process.describe()}; fitted on training tracks and shipped in "
        "the manifest, see Listening; the V5 recipe: fresh noise every frame) and the glide of the frames' level its mode ships with "
        "(an EMA of the level, raised by the dB that keep its median, every band moved alike; 1: none), against the real music of the "
        "same windows. Medians over the "
        "64 bands: the frame-to-frame change as a ratio to the real music's, the same for the overall level (10 log10 of the summed "
        "band powers, which SAN's loudness follows), the autocorrelation at lag 1 and 8 frames (the real "
        "music's in brackets; the lag-1 gap, generated less real, with its 90% bootstrap interval over windows: the real music's "
        f"own windows differ by about as much), the spread over time as a ratio, the Frechet distance of the same frames one by one and of {measure.SEQUENCE_FRAMES}-frame "
        "sequences (normalised units, leading principal axes of the training music; 90% bootstrap interval over windows). "
        "`training music` plays, in each window's place, the real music of a training window of the same mode: what a generator "
        "that replayed its training tracks exactly would score. `real vs real` compares alternate windows of the real music with "
        "each other: the floor.", "",
        "| sampler | change ratio | level change | lag-1 (real) | lag-1 gap | lag-8 (real) | spread ratio | FD per frame | sequence FD |",
        "|---|---|---|---|---|---|---|---|---|", *table])


def _lag1_gap(row: dict) -> str:
    """The lag-1 gap with its interval (`temporal.lag1_gap_interval`); the reference rows give the gap alone."""
    gap = f"{row['lag1'] - row['lag1_real']:+.3f}"
    return gap + (f" ({row['lag1_gap_lo']:+.3f} - {row['lag1_gap_hi']:+.3f})" if np.isfinite(row["lag1_gap_lo"]) else "")


def over_time_detail_section(detail: dict[str, dict]) -> str:
    """The shipped frames over time per mode, and the controls SAN makes of them (what the AudioEngine receives)."""
    def row(name: str, r: dict, *extra: str) -> str:
        return (f"| {name} | {int(r['windows'])} | {r['change_ratio']:.2f} | {r['lag1']:.3f} ({r['lag1_real']:.3f}) | "
                f"{r['lag8']:.3f} ({r['lag8_real']:.3f}) | {r['spread_ratio']:.2f} |" + "".join(f" {e} |" for e in extra))
    head = "| {} | windows | change ratio | lag-1 (real) | lag-8 (real) | spread ratio |"
    modes = [row(m, detail[m], f"{detail[m]['level_change_ratio']:.2f}",
                 f"{detail[m]['san_loudness_change_ratio']:.2f} ({detail[m]['san_loudness_change_ratio_on_music']:.2f})",
                 f"{detail[m]['level_vs_music_db']:+.1f}", f"{detail[m]['gaps_per_min']:.1f} ({detail[m]['gaps_per_min_real']:.1f})")
             for m in contract.MODES if m in detail]
    controls = [row(label + shown, detail[name + suffix]) for suffix, shown in (("", ""), (measure.SAN_ON_REAL_MUSIC, ", SAN on the real music"))
                for label, name in (("all 16 (medians)", "controls"), *((n, n) for n in measure.OVER_TIME_CONTROLS))]
    return "\n".join([
        "The shipped one-step frames of the same windows, per mode (medians over the 64 bands; the change of their overall "
        "level and of SAN's loudness made from them, as ratios to the real music's: which mode's loudness flickers, with SAN's "
        "loudness made from the real music in brackets: whether SAN flickers on its own; their median "
        "level less the real music's, in dB: which mode plays too quiet or too loud; its gaps per minute, runs of "
        f"{temporal.GAP_SECONDS:g} s or more at least {temporal.GAP_DB:g} dB below the real music's median level, with the real music's "
        "in brackets: where a held noise draw plays a silence), and SAN's "
        "16 controls made from them and from the same body, against the real music's controls. The rows marked "
        "`SAN on the real music` feed SAN the real music of the windows instead: a gap there too is "
        "SAN's own; a gap only above comes from the generated frames.", "",
        head.format("mode") + " level change | SAN loudness change (on the real music) | median level vs music (dB) | gaps per minute (real) |",
        "|---|---|---|---|---|---|---|---|---|---|", *modes, "",
        head.format("SAN control"), "|---|---|---|---|---|---|", *controls])


def listening_section(previews: dict, v6_sha256: dict[str, str], run_id: str) -> str:
    """Per mode: the music it must produce, the V6 clip and its spectrogram; then emotions, V5, the reference, how to sign."""
    clips = {c["name"]: c for c in previews["clips"]}

    def row(label: str, character: str, name: str) -> str:
        c = clips[name]
        return f'| {label} | {character} | <audio controls preload="metadata" src="listening/{c["wav"]}"></audio> | ![{name}](listening/{c["spectrogram"]}) |'

    own = clips["reference"]["mode"]
    emotion = clips[f"v6-{own}"]["emotion"]
    head = "| {} | {} | listen | log-mel spectrogram |\n|---|---|---|---|"
    modes = [row(title, music, f"v6-{m}") for m, title, music in zip(contract.MODES, contract.MODE_TITLES, contract.MODE_MUSIC)]
    emotions = [row(e, "same body, mode and noise", f"v6-{own}" if e == emotion else f"v6-emotion-{e}") for e in contract.EMOTIONS]
    others = [row("V5 fallback", "no mode or emotion input", "v5"), row("reference", f"the track's own music ({own})", "reference")]
    listen = " ".join(f"{m}=pass" for m in contract.MODES)
    return "\n".join([
        f"Every clip is the same {previews['seconds']:.0f} s of held-out body motion (validation track `{previews['track_id']}` from "
        f"{previews['start_seconds']:.1f} s) through the shipped one-step path, ConditioningEncoderV6 -> FlowGenerator1StepV6, frame by "
        "frame at 30 Hz with the same random draws through the shipped noise process of each clip's mode (see Over time), then back to audio by librosa's mel inversion (Griffin-Lim). The reference is the track's "
        "own music through the same mel round trip: what the inversion alone does to real music.", "",
        f"### Modes (emotion: {emotion})", "", head.format("mode", "the music it must produce"), *modes, "",
        f"### Emotions ({own})", "", head.format("emotion", ""), *emotions, "",
        "### Fallback and reference", "", head.format("clip", ""), *others, "",
        "### Signing", "", "After listening (write `MODE=fail` for a mode that does not sound right):", "",
        f'```\nlume-v6 signoff --by "Your Name" --report {run_id} {listen}\n```', "",
        "After verifying on the iPhone that the previous build runs live with the V5 models (the Chain 1 dispatch fixes), "
        "then with V6 swapped in:", "", f'```\nlume-v6 signoff --on-device --by "Your Name" --report {run_id} v5_chain1=pass v6_swap=pass\n```', "",
        "Both records are bound to these V6 packages: " + ", ".join(f"{n} `{d[:12]}`" for n, d in sorted(v6_sha256.items())) + "."])


def champion_section(c: champion_mod.Comparison) -> str:
    """Challenger and champion side by side, and what the comparison decides."""
    lines = [f"**{c.state}**: {escape(c.reason)}", ""]
    if c.champion:
        lines += [f"Champion: bundle `{c.champion['bundle']}` (release run {c.champion['release_run_id'][:8]}, V6 model run "
                  f"{c.champion['model_run_id'][:8]}): " + ", ".join(f"{n} `{d[:12]}`" for n, d in sorted(c.champion["packages_sha256"].items())), ""]
    if c.metrics:
        lines += [f"Measured on {len(c.tracks)} validation track(s) neither model trained on ({', '.join(c.tracks)}), same frames and noise:", "",
                  "| metric | tonight (challenger) | champion |", "|---|---|---|"]
        lines += [f"| {label} | {c.metrics['challenger'][k]:.4g} | {c.metrics['champion'][k]:.4g} |" for k, label in champion_mod.METRICS.items()]
    if c.blocks:
        lines += ["", "To ship it anyway, on purpose and on the record: `lume-v6 promote --by \"Your Name\" --why \"...\" --report RUN_ID`."]
    return "\n".join(lines)


def signoff_section(artifacts: Path, v6_sha256: dict[str, str]) -> str:
    """The append-only history of the records for these packages (and every unreadable line)."""
    entries = signoff.for_packages(artifacts, v6_sha256)
    if not entries:
        return "No record for these packages yet."
    rows = [f"| {e.line} | unreadable: {escape(e.error)} | | | | | |" if e.record is None else
            f"| {e.line} | {escape(e.record.get('kind'))} | {escape(e.record.get('signed_at'))} | {escape(e.record.get('signer'))} "
            f"({escape(e.record.get('os_user'))}@{escape(e.record.get('host'))}) | {escape(str(e.record.get('report_run_id'))[:8])} | "
            f"{escape(e.record.get('results'))} | {escape(e.record.get('comment', ''))} |" for e in entries]
    return "\n".join([f"From `{artifacts / signoff.HISTORY}`, oldest first; the newest record of each kind decides.", "",
                      "| line | kind | signed at (UTC) | signer (OS user@host) | report | results | comment |", "|---|---|---|---|---|---|---|", *rows])


def evaluate(inp: Inputs, th: Thresholds, out_dir: Path, beside: Executor | None = None) -> Evaluation:
    """All 9 gates (and the on-device record beside gate 9), the plots and the report files.

    The latency is timed first, alone; then gate 6's sensitivity (the longest measure) is computed on
    `beside` (a second thread) while this thread measures the rest. Each measure reads only its inputs.
    """
    split = inp.split
    train = load_arrays(split, split.train)
    val = load_arrays(split, split.val)
    stats_ok = compute_stats(split.read(t) for t in split.train) == split.stats
    picked = measure.random_rows(len(val["latent"]), inp.profile.gate_frames, 1)  # spread over every validation track
    val_modes = contract.modes_of(val["conditioning"])
    cond, picked_tracks = val["conditioning"][picked], len(np.unique(val["track"][picked]))
    v6_noise = inp.noise["encoder_flow_v6"]
    noise = v6_noise.for_tracks(val, 0)[picked]  # the shipped process, drawn along each track
    latency = measure.latency_ms(inp.pipeline)
    sensitivity = (beside or Inline()).submit(measure.block_sensitivity, inp.pipeline, cond, split.stats.arrays("dynamics")[1], noise)
    classify = measure.mode_classifier(train["latent"], contract.modes_of(train["conditioning"]))
    real_accuracy = measure.real_mode_accuracy(classify, val["latent"][picked], val_modes[picked])
    modes = measure.mode_conditioning(inp.pipeline, classify, cond, noise)
    latent_stats = split.stats.arrays("latent")
    distances = {"generated": measure.mode_distances(modes["generated"], latent_stats),
                 "real": measure.mode_distances(measure.real_by_mode(val["latent"], val_modes), latent_stats)}
    over_time = measure.over_time(
        {"V6 1-step (shipped)": (inp.pipeline.encoder, inp.pipeline.generator, v6_noise, 1),
         "V6 16-step": (inp.pipeline.encoder, inp.pipeline.generator, v6_noise, 16),
         "V5 recipe": (*inp.v5, inp.noise["v5_baseline"], 1)},
        train, val, latent_stats, measure.sequence_axes(train["latent"], split.stats), inp.profile.windows_per_track)
    detail = measure.over_time_detail(inp.pipeline, v6_noise, val, inp.profile.windows_per_track)
    sens = sensitivity.result()
    ratios = {k: measure.sensitivity_ratio(v) for k, v in sens.items()}
    override = signoff.decisive(inp.artifacts, signoff.OVERRIDE, inp.v6_sha256)
    comparison = champion_mod.compare((inp.pipeline.encoder, inp.pipeline.generator, v6_noise), inp.champion, split,
                                      train["latent"], classify, th, override[2] if override[0] == signoff.PASS else None)
    cells = np.array(split.coverage_minutes)
    v6 = inp.metrics["encoder_flow_v6"]
    gates = [
        g.coverage(len(split.train) + len(split.val), cells, th),
        g.split_integrity(split.train, split.val, split.track_modes, stats_ok),
        g.encoder_flow(v6["val_loss"], inp.metrics["v5_baseline"]["val_loss"], v6["fd_1step"], v6["fd_16step"],
                       inp.metrics["v5_baseline"]["fd_1step"], over_time["V6 1-step (shipped)"], th),
        g.san(inp.metrics["san_v6"]["val_loss"], int(inp.metrics["san_v6"]["params"]), th),
        g.conditioning(modes["accuracy"], distances["generated"], distances["real"], len(cond), real_accuracy, th),
        g.full_dynamics(ratios["latent"], ratios["controls"], len(cond), picked_tracks, th),
        g.export_parity(inp.smoke, th),
        g.budget(inp.v6_package_bytes / 1e6, latency, th),
        g.listening(signoff.read_record(inp.artifacts, signoff.LISTENING, inp.v6_sha256)),
        g.on_device(signoff.read_record(inp.artifacts, signoff.ON_DEVICE, inp.v6_sha256)),
    ]
    figures = {
        "Loss curves (dashed: train, solid: validation)": plots.loss_curves(inp.histories, out_dir / "loss_curves.png"),
        "Coverage: minutes per mode x emotion": plots.coverage_heatmap(cells, contract.MODES, contract.EMOTIONS, out_dir / "coverage.png"),
        "Generated latents per mode (same body, emotion and noise)": plots.latent_distributions(modes["generated"], contract.MODES, out_dir / "latents.png"),
        "Sensitivity per dynamics block (V5 read the first four)": plots.block_sensitivity(sens, contract.DYNAMICS_BLOCKS, contract.BLOCK_DIM, out_dir / "sensitivity.png"),
    }
    flat = {f"{m}.{k}": float(v) for m, d in inp.metrics.items() for k, v in d.items()}
    flat.update({"mode_accuracy": modes["accuracy"], "mode_accuracy_real_music": real_accuracy, "sensitivity_ratio_latent": ratios["latent"],
                 "sensitivity_ratio_controls": ratios["controls"], "latency_ms": latency})
    flat.update({f"champion.{who}.{k}": v for who, d in comparison.metrics.items() for k, v in d.items()})
    flat.update({f"over_time.{TAGS[who]}.{k}": float(v) for who, d in over_time.items() for k, v in d.items()})
    flat.update({f"over_time.v6.{part}.{k}": float(v) for part, d in detail.items() for k, v in d.items()})
    sections = {"Champion and challenger": champion_section(comparison), "One-step generator": one_step_section(v6),
                "Over time": over_time_section(over_time, v6_noise) + "\n\n" + over_time_detail_section(detail),
                "Listening": listening_section(inp.previews, inp.v6_sha256, inp.provenance["run_id"]),
                "Sign-offs": signoff_section(inp.artifacts, inp.v6_sha256)}
    md, page = report.write(out_dir, gates, comparison, figures, inp.provenance, flat, split.excluded, sections, th.overrides())
    return Evaluation(gates, flat, figures, md, page, comparison)
