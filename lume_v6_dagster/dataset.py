"""The training dataset: cross-track split, normalisation statistics, fingerprint (docs/pairs_and_models.md).

Validation tracks are whole tracks chosen from the track ids alone (a hash, not the order
they arrived in), stratified by mode so every mode is validated. Statistics see training
tracks only.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from lume_v6_dagster import contract
from lume_v6_dagster.atomic_files import write_json
from lume_v6_dagster.pairs import Pairs, PairsChanged, read_pairs

VAL_FRACTION = 0.2


def _rank(track_id: str) -> str:
    return hashlib.sha256(track_id.encode()).hexdigest()


class SplitRefused(ValueError):
    """The tracks cannot be split so that every mode present is both trained on and validated."""


def split_tracks(track_modes: dict[str, int], val_fraction: float = VAL_FRACTION) -> tuple[list[str], list[str]]:
    """(train, val): per mode, the ceil(fraction * n) tracks with the smallest id hash validate.

    A mode with a single track is refused: it would only be validated, and every gate could pass
    on a mode the model never trained on.
    """
    by_mode = {m: sorted((t for t, tm in track_modes.items() if tm == m), key=_rank) for m in sorted(set(track_modes.values()))}
    alone = {m: ids for m, ids in by_mode.items() if len(ids) < 2}
    if alone or not track_modes:
        named = "; ".join(f"{contract.MODES[m]}: only {ids[0]}" for m, ids in alone.items()) or "no tracks"
        raise SplitRefused(f"every mode needs two usable tracks, one to train on and one to validate ({named}); "
                           "capture another session of that mode, or wait until one is ingested")
    train, val = [], []
    for ids in by_mode.values():
        k = math.ceil(val_fraction * len(ids))
        val += ids[:k]
        train += ids[k:]
    return sorted(train), sorted(val)


@dataclass
class Stats:
    """Mean and std of each array a model normalises, from training tracks only."""

    dynamics_mean: list[float]
    dynamics_std: list[float]
    latent_mean: list[float]
    latent_std: list[float]
    controls_mean: list[float]
    controls_std: list[float]
    n: int

    def arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(getattr(self, f"{name}_mean"), np.float32), np.asarray(getattr(self, f"{name}_std"), np.float32)


def compute_stats(pairs: Iterable[Pairs]) -> Stats:
    """Streaming float64 sums over tracks, so memory is one track at a time."""
    sums = {}
    n = 0
    for p in pairs:
        for name, x in (("dynamics", p.conditioning[:, contract.DYNAMICS_SLICE]), ("latent", p.target_latent), ("controls", p.target_controls)):
            s, ss = sums.get(name, (0.0, 0.0))
            sums[name] = (s + x.sum(0, dtype=np.float64), ss + (x.astype(np.float64) ** 2).sum(0))
        n += len(p.t)
    out = {}
    for name, (s, ss) in sums.items():
        mean = s / n
        out[f"{name}_mean"] = mean.tolist()
        out[f"{name}_std"] = np.sqrt(np.maximum(ss / n - mean**2, 1e-8)).clip(1e-3).tolist()
    return Stats(n=n, **out)


@dataclass
class DatasetSplit:
    train: list[str]
    val: list[str]
    track_modes: dict[str, int]
    fingerprint: str  # hash of the pairs files read
    stats: Stats
    pairs_sha256: dict[str, str] = field(default_factory=dict)
    pairs_paths: dict[str, str] = field(default_factory=dict)  # the files the fingerprint was taken of
    coverage_minutes: list[list[float]] = field(default_factory=list)  # [mode][emotion], valid pairs, all tracks
    excluded: dict[str, str] = field(default_factory=dict)  # track id -> reason

    def read(self, track: str) -> Pairs:
        """A track's pairs, refused by the track's name unless the file is the one this split recorded."""
        try:
            return read_pairs(Path(self.pairs_paths[track]), self.pairs_sha256[track])
        except PairsChanged as e:
            raise PairsChanged(f"track {track}: {e}. Split {self.fingerprint} was computed from other pairs: "
                               "re-run dataset_split (the `train` job) to train on what the track holds now") from None

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> "DatasetSplit":
        d = json.loads(Path(path).read_text())
        return cls(**{**d, "stats": Stats(**d["stats"])})


def add_coverage(cells: np.ndarray, p: Pairs) -> None:
    """Add one track's minutes of valid pairs to the (mode, emotion) cells."""
    if len(p.t) < 2:
        return
    dt = float(np.median(np.diff(p.t)))
    mode = contract.modes_of(p.conditioning)
    emo = p.conditioning[:, contract.EMOTION_SLICE].argmax(1)
    np.add.at(cells, (mode, emo), dt / 60.0)


def fingerprint(pairs_sha256: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(pairs_sha256.items())).encode()).hexdigest()[:16]


def build_split(pairs_paths: dict[str, Path], excluded: dict[str, str] | None = None) -> DatasetSplit:
    """Split the tracks, then compute statistics on the training side only."""
    shas, modes, cells = {}, {}, np.zeros((len(contract.MODES), len(contract.EMOTIONS)))
    for t, path in sorted(pairs_paths.items()):  # one read per track for digest, mode and coverage
        p = read_pairs(path)
        shas[t], modes[t] = p.sha256, int(contract.modes_of(p.conditioning[:1])[0])
        add_coverage(cells, p)
    train, val = split_tracks(modes)
    stats = compute_stats(read_pairs(pairs_paths[t], shas[t]) for t in train)  # the very files the digests were taken of
    return DatasetSplit(train, val, modes, fingerprint(shas), stats, shas, {t: str(p) for t, p in sorted(pairs_paths.items())},
                        cells.round(3).tolist(), dict(excluded or {}))


def load_arrays(split: DatasetSplit, ids: list[str]) -> dict[str, np.ndarray]:
    """Concatenate the pairs of `ids` (training or validation side), each verified against the split, into arrays."""
    parts = [split.read(t) for t in ids]
    return {
        "conditioning": np.concatenate([p.conditioning for p in parts]),
        "latent": np.concatenate([p.target_latent for p in parts]),
        "controls": np.concatenate([p.target_controls for p in parts]),
        "track": np.concatenate([np.full(len(p.t), i) for i, p in enumerate(parts)]),
        "t": np.concatenate([p.t for p in parts]),
    }
