"""Per-track V6 training pairs (docs/pairs_and_models.md): conditioning, log-mel latent, engine controls.

Pairs sit on the session clock at `pair_hz`. Audio features come from one librosa STFT with
hop = SAMPLE_RATE / pair_hz and centred windows, so feature frame k is centred on pair time
k / pair_hz. Memory is bounded by one track.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import librosa
import numpy as np

from lume_v6_dagster import contract
from lume_v6_dagster.atomic_files import save_npz, write_json
from lume_v6_dagster.checksums import sha256_file
from lume_v6_dagster.capture import audio, schemas
from lume_v6_dagster.capture.folder import Capture
from lume_v6_dagster.capture.violations import CaptureError, Violation

N_FFT = 2048


class PairsChanged(ValueError):
    """A pairs file is not the one whose digest was recorded (rewritten, re-ingested or gone)."""


@dataclass(frozen=True)
class PairsConfig:
    pair_hz: float = 30.0
    min_confidence: float = 0.5

    @property
    def hop(self) -> int:
        hop = contract.SAMPLE_RATE / self.pair_hz
        if hop != int(hop):
            raise ValueError(f"pair_hz={self.pair_hz} must divide {contract.SAMPLE_RATE} Hz (e.g. 15, 25, 30, 50)")
        return int(hop)


@dataclass
class Pairs:
    track_id: str
    t: np.ndarray  # (M,) float64 pair times, seconds
    conditioning: np.ndarray  # (M, 141) float32
    target_latent: np.ndarray  # (M, 64) float32 log-mel dB
    target_controls: np.ndarray  # (M, 16) float32
    checksums: dict[str, str] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    sha256: str = ""  # of the file it was read from


def audio_features(y: np.ndarray, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(F, 64) log-mel dB and (F, 16) controls, frame k centred on sample k * hop."""
    sr = contract.SAMPLE_RATE
    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=hop, center=True))  # (1025, F)
    power = mag**2
    mel_db = librosa.power_to_db(
        librosa.feature.melspectrogram(S=power, sr=sr, n_mels=contract.LATENT_DIM), ref=1.0, amin=1e-10, top_db=None
    )  # (64, F)
    controls = np.vstack(
        [
            librosa.amplitude_to_db(librosa.feature.rms(S=mag, frame_length=N_FFT), ref=1.0, amin=1e-5, top_db=None),
            librosa.feature.spectral_centroid(S=mag, sr=sr),
            librosa.feature.spectral_flatness(S=mag),
            librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=hop, n_fft=N_FFT)[None],
            librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0),
        ]
    )  # (16, F)
    return mel_db.T.astype(np.float32), controls.T.astype(np.float32)


def _frame_windows(t: np.ndarray, pair_hz: float, n_pairs: int) -> np.ndarray:
    """Pair index of each frame: pair k averages frames with t in [k - 1/2, k + 1/2) / pair_hz."""
    idx = np.floor(t * pair_hz + 0.5).astype(np.int64)
    return np.where((idx >= 0) & (idx < n_pairs), idx, -1)


def _in_dropouts(t: np.ndarray, dropouts) -> np.ndarray:
    mask = np.zeros(len(t), dtype=bool)
    for t0, t1 in dropouts:
        mask |= (t >= t0) & (t < t1)
    return mask


def _window_means(idx, valid, dynamics, n_pairs):
    """Mean dynamics of valid frames per pair window, and the valid-frame count.

    Frames are in time order, so each window is one contiguous run: a reduceat over runs
    (np.add.at, a scatter, was 4x slower; the sums are bit-identical).
    """
    keep = np.flatnonzero(valid & (idx >= 0))
    counts = np.bincount(idx[keep], minlength=n_pairs)
    means = np.zeros((n_pairs, dynamics.shape[1]), dtype=np.float32)
    if len(keep):
        window = idx[keep]
        starts = np.flatnonzero(np.r_[True, window[1:] != window[:-1]])
        sums = np.add.reduceat(dynamics[keep], starts, axis=0, dtype=np.float64)
        means[window[starts]] = sums / counts[window[starts]][:, None]
    return means, counts


def build_pairs(cap: Capture, cfg: PairsConfig = PairsConfig()) -> Pairs:
    """Pairs for one validated capture; excluded frames never contribute to a pair."""
    sess, arr = cap.session, cap.arrays
    n_pairs = int(np.floor(sess.end_t * cfg.pair_hz - 0.5)) + 1  # whole windows inside the session
    if n_pairs < 1:
        raise CaptureError(str(cap.path), [Violation("session.jsonl", "session_end", f"session of {sess.end_t:.3f} s is shorter than one pair window ({1 / cfg.pair_hz:.3f} s)")])
    idx = _frame_windows(arr.t, cfg.pair_hz, n_pairs)
    dropped = _in_dropouts(arr.t, sess.dropouts)
    low = arr.confidence < cfg.min_confidence
    dyn, counts = _window_means(idx, ~dropped & ~low, arr.dynamics, n_pairs)
    in_dropout = np.bincount(idx[(idx >= 0) & dropped], minlength=n_pairs) > 0
    kept = counts > 0

    y = audio.load_mono(cap.path / audio.FILE, seconds=sess.end_t + 0.5)
    latent, controls = audio_features(y, cfg.hop)
    kept &= np.arange(n_pairs) < len(latent)
    t = np.arange(n_pairs) / cfg.pair_hz
    emotion = sess.emotion_at(t[kept])
    cond = contract.conditioning(dyn[kept], np.full(kept.sum(), sess.mode), emotion)
    stats = {
        "frames": int(len(arr.t)),
        "frames_excluded_dropout": int(dropped.sum()),
        "frames_excluded_low_confidence": int((low & ~dropped).sum()),
        "pairs_total": int(n_pairs),
        "pairs_kept": int(kept.sum()),
        "pairs_dropped_dropout": int((~kept & in_dropout).sum()),
        "pairs_dropped_low_confidence": int((~kept & ~in_dropout).sum()),
    }
    return Pairs(cap.track_id, t[kept], cond, latent[np.flatnonzero(kept)], controls[np.flatnonzero(kept)], stats=stats)


def write_pairs(path: Path, pairs: Pairs) -> None:
    save_npz(
        path,
        t=pairs.t,
        conditioning=pairs.conditioning,
        target_latent=pairs.target_latent,
        target_controls=pairs.target_controls,
        track_id=np.array(pairs.track_id),
        schema_version=np.array(contract.PAIRS_SCHEMA_VERSION),
        checksums=np.array(json.dumps(pairs.checksums, sort_keys=True)),
        stats=np.array(json.dumps(pairs.stats, sort_keys=True)),
    )


def publish_pairs(versions: Path, pointer: Path, pairs: Pairs) -> tuple[Path, str]:
    """Write the pairs under their own digest (`versions/<sha16>.npz`), then point `pointer` at them.

    A file once written is never rewritten: a re-ingest with other content adds a file, so
    the file a split names stays what it recorded.
    """
    incoming = Path(versions) / f".incoming-{uuid.uuid4().hex}.npz"
    write_pairs(incoming, pairs)
    digest = sha256_file(incoming)
    path = Path(versions) / f"{digest[:16]}.npz"
    if path.exists() and sha256_file(path) == digest:
        incoming.unlink()
    else:
        os.replace(incoming, path)
    write_json(pointer, {"file": str(path.relative_to(Path(pointer).parent)), "sha256": digest})
    return path, digest


def read_pairs(path: Path, sha256: str | None = None) -> Pairs:
    """Read a pairs file; with `sha256`, refuse it unless it is exactly the file recorded."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise PairsChanged(f"{path}: the pairs file is gone") from None
    digest = hashlib.sha256(data).hexdigest()
    if sha256 is not None and digest != sha256:
        raise PairsChanged(f"{path}: sha256 {digest[:16]} is not the {sha256[:16]} recorded for it")
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        if str(z["schema_version"]) != contract.PAIRS_SCHEMA_VERSION:
            raise ValueError(f"{path}: schema_version {z['schema_version']} is not {contract.PAIRS_SCHEMA_VERSION}")
        return Pairs(str(z["track_id"]), z["t"], z["conditioning"], z["target_latent"], z["target_controls"],
                     json.loads(str(z["checksums"])), json.loads(str(z["stats"])), digest)


def pairs_violations(path: Path) -> list[Violation]:
    """pandera check of a pairs file: one-hots, finiteness, ranges, increasing t."""
    p = read_pairs(path)
    return schemas.violations(schemas.PAIRS_SCHEMA, schemas.pairs_frame(p.t, p.conditioning, p.target_latent, p.target_controls), Path(path).name)
