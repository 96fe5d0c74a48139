"""Tonight's V6 (the challenger) against the V6 already on the phone (the champion).

The champion is the V6 of the newest bundle that was RELEASED or FULLY SHIPPED with other
packages than tonight's. Both are measured on the validation tracks that neither trained on,
with the same frames and the same noise: validation loss, per-frame and sequence Frechet
distance, mode recovery. A regression beyond the thresholds blocks the release unless a
person promotes the challenger through a recorded override.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lume_v6_dagster import contract, temporal
from lume_v6_dagster.acceptance import measure
from lume_v6_dagster.acceptance.thresholds import Thresholds
from lume_v6_dagster.checksums import sha256_file
from lume_v6_dagster.dataset import DatasetSplit, Stats, load_arrays
from lume_v6_dagster.noise import NoiseProcess
from lume_v6_dagster.trained_models import load_encoder_flow
from lume_v6_dagster.training.flow_training import validation_loss
from lume_v6_dagster.training.metrics import frechet_distance

RELEASED = ("RELEASED", "FULLY SHIPPED")
EVAL_FRAMES = 8_192  # per-frame FD and validation loss, evenly strided over the held-out tracks
MODE_FRAMES = 3_000  # mode recovery, as gate 5
SEQUENCE_WINDOWS = 4_096
METRICS = {"val_loss": "validation loss (own normalised units)", "fd_1step": "FD 1-step, per frame",
           "sequence_fd": f"sequence FD ({measure.SEQUENCE_FRAMES} frames)", "mode_accuracy": "mode recovery"}


@dataclass(frozen=True)
class Champion:
    """A released bundle, as release_bundle recorded it."""

    release_run_id: str
    bundle: Path
    manifest: dict


@dataclass
class Comparison:
    state: str  # none | no shared tracks | unverifiable | no worse | regressed | overridden
    reason: str
    champion: dict = field(default_factory=dict)  # release run id, bundle, V6 sha256, model run id
    tracks: list[str] = field(default_factory=list)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # challenger / champion -> metric -> value
    regressions: list[str] = field(default_factory=list)
    override: dict | None = None

    @property
    def blocks(self) -> bool:
        """Whether tonight's V6 must not ship: it lost, or it could not be compared with a champion that exists."""
        return self.state in ("regressed", "unverifiable")

    def as_dict(self) -> dict:
        return {**asdict(self), "blocks": self.blocks}


class Unavailable(Exception):
    """The champion's models cannot be loaded as they were released."""


def newest(bundles: Iterable[tuple[str, Path, dict]], v6_sha256: dict[str, str]) -> Champion | None:
    """From (release run id, bundle, manifest) newest first: the newest released bundle of other V6 packages."""
    for run_id, bundle, manifest in bundles:
        if manifest.get("status") in RELEASED and manifest.get("packages_sha256") != v6_sha256:
            return Champion(run_id, bundle, manifest)
    return None


def load_models(champion: Champion):
    """(encoder, one-step generator, train tracks), verified against the weights digest the bundle recorded."""
    rec = champion.manifest.get("models", {}).get("encoder_flow_v6") or {}
    if not (rec.get("run_dir") and rec.get("weights_sha256") and "train" in champion.manifest.get("tracks", {})):
        raise Unavailable(f"bundle {champion.bundle} records no weights digest for its V6 (made before champions were compared)")
    weights = Path(rec["run_dir"]) / "model.pt"
    if not weights.exists():
        raise Unavailable(f"{weights} (the champion's V6) is gone")
    if (digest := sha256_file(weights)) != rec["weights_sha256"]:
        raise Unavailable(f"{weights} has sha256 {digest[:12]}, not the {rec['weights_sha256'][:12]} that bundle {champion.bundle} shipped")
    try:
        enc, gen, process = load_encoder_flow(Path(rec["run_dir"]), Stats(**champion.manifest["normalisation"]))
    except (RuntimeError, KeyError) as e:  # the model code changed shape since the champion was trained
        raise Unavailable(f"{weights} (model code {rec.get('code_version', 'unrecorded')}) does not load into this code's models: "
                          f"{str(e).splitlines()[0]}") from None
    return enc, gen, process, list(champion.manifest["tracks"]["train"])


@dataclass
class HeldOut:
    """The frames both models are measured on, and what the measurements share."""

    arrays: dict[str, np.ndarray]
    latent: np.ndarray  # real latents in tonight's normalised units
    stats: Stats  # tonight's: the common units of both FDs
    classify: object  # gate 5's classifier, fitted on tonight's training music
    axes: np.ndarray  # principal axes for the sequence FD, from tonight's training latents
    windows: np.ndarray  # (W, K) rows of consecutive pairs the sequence FD compares

    @property
    def frames(self) -> np.ndarray:
        return np.unique(np.linspace(0, len(self.latent) - 1, min(EVAL_FRAMES, len(self.latent))).astype(int))


def held_out(split: DatasetSplit, tracks: list[str], train_latent: np.ndarray, classify) -> HeldOut:
    arrays = load_arrays(split, tracks)
    mean, std = split.stats.arrays("latent")
    return HeldOut(arrays, (arrays["latent"] - mean) / std, split.stats, classify, measure.sequence_axes(train_latent, split.stats),
                   temporal.consecutive_windows(arrays["t"], arrays["track"], measure.SEQUENCE_FRAMES, SEQUENCE_WINDOWS))


@torch.no_grad()
def measure_v6(enc, gen, process: NoiseProcess, h: HeldOut) -> dict[str, float]:
    """The four figures for one V6 on the held-out frames, each with the noise process it ships with (fixed seed)."""
    mean, std = h.stats.arrays("latent")
    c, x_db = h.arrays["conditioning"], h.arrays["latent"]
    flow = gen.flow
    own = (torch.from_numpy(x_db) - flow.latent_mean) / flow.latent_std  # the loss in the model's own units, as in training
    rows = h.frames
    loss = float(validation_loss(enc, flow, torch.from_numpy(c[rows]), own[rows]))
    ran = measure.with_run_in(h.windows, h.arrays["track"])
    used = np.union1d(rows, ran.ravel())
    noise = process.for_tracks(h.arrays, 0)
    pipe = measure.Pipeline(enc, gen, None)
    fake = np.zeros_like(h.latent)
    fake[used] = pipe.latents(c[used], noise[used])
    played = (measure.played(fake[ran], process, contract.modes_of(c[h.windows[:, 0]])) - mean) / std  # as the app plays them
    fake = (fake - mean) / std
    picked = measure.random_rows(len(c), MODE_FRAMES, 1)
    modes = measure.mode_conditioning(pipe, h.classify, c[picked], noise[picked])
    return {"val_loss": loss, "fd_1step": frechet_distance(fake[rows].astype(np.float64), h.latent[rows].astype(np.float64)),
            "sequence_fd": measure.sequence_fd(played.reshape(h.windows.size, -1), h.latent[h.windows.ravel()],
                                               np.arange(h.windows.size).reshape(h.windows.shape), h.axes),
            "mode_accuracy": modes["accuracy"]}


def regressions(challenger: dict[str, float], champion: dict[str, float], th: Thresholds) -> list[str]:
    """Every figure on which tonight's V6 is worse than the champion's beyond its threshold."""
    worse = []
    for key, limit in (("val_loss", th.champion_loss_regression_max), ("fd_1step", th.champion_fd_regression_max),
                       ("sequence_fd", th.champion_fd_regression_max)):
        if not challenger[key] <= champion[key] * (1 + limit):
            worse.append(f"{METRICS[key]} {challenger[key]:.4g} vs champion {champion[key]:.4g} "
                         f"({challenger[key] / champion[key] - 1:+.1%}; at most {limit:+.0%})")
    drop = champion["mode_accuracy"] - challenger["mode_accuracy"]
    if not drop <= th.champion_mode_accuracy_drop_max:
        worse.append(f"mode recovery {challenger['mode_accuracy']:.1%} vs champion {champion['mode_accuracy']:.1%} "
                     f"(-{drop:.1%}; at most -{th.champion_mode_accuracy_drop_max:.0%})")
    return worse


def compare(challenger: tuple, champion: Champion | None, split: DatasetSplit, train_latent: np.ndarray,
            classify, th: Thresholds, override: dict | None) -> Comparison:
    """Tonight's (encoder, generator, noise process) against the champion; `override`: a person's recorded promotion, if any."""
    if champion is None:
        return Comparison("none", "first release: no earlier bundle was released, so there is no champion to beat")
    names = {"release_run_id": champion.release_run_id, "bundle": str(champion.bundle),
             "packages_sha256": champion.manifest.get("packages_sha256", {}),
             "model_run_id": champion.manifest.get("run_ids", {}).get("encoder_flow_v6", "")}
    try:
        enc, gen, process, champion_train = load_models(champion)
    except Unavailable as e:
        return _overridable(Comparison("unverifiable", f"the champion cannot be measured: {e}", names), override)
    tracks = [t for t in split.val if t not in set(champion_train)]
    if not tracks:
        return Comparison("no shared tracks", "tonight's validation tracks were all training tracks of the champion: "
                          "no held-out track to compare on, so the comparison does not decide", names)
    h = held_out(split, tracks, train_latent, classify)
    figures = {"challenger": measure_v6(*challenger, h), "champion": measure_v6(enc, gen, process, h)}
    worse = regressions(figures["challenger"], figures["champion"], th)
    result = Comparison("regressed" if worse else "no worse", "; ".join(worse) or f"no worse than the champion on {len(tracks)} held-out track(s)",
                        names, tracks, figures, worse)
    return _overridable(result, override)


def _overridable(result: Comparison, override: dict | None) -> Comparison:
    if result.blocks and override is not None:
        result.override, result.state = override, "overridden"
        result.reason = f"{result.reason}; promoted anyway by {override['signer']} at {override['signed_at']}: {override['comment']}"
    return result
