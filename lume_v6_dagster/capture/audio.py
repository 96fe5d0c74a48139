"""Audio checks and loading through soundfile (header first) and librosa (resampling)."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from lume_v6_dagster import contract
from lume_v6_dagster.capture.violations import Violation

FILE = "audio.wav"
MAX_SECONDS = 6 * 3600  # refuse anything longer before reading it
SILENCE_PEAK = 1e-4


def check_audio(path: Path, session_seconds: float | None, out: list[Violation]) -> sf._SoundFileInfo | None:
    """Header checks (rate, length, size) and a streamed silence check; bounded memory."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as e:
        out.append(Violation(FILE, "file", f"unreadable audio: {e}"))
        return None
    before = len(out)
    if info.samplerate < contract.MIN_AUDIO_RATE:
        out.append(Violation(FILE, "header", f"sample rate {info.samplerate} Hz is below {contract.MIN_AUDIO_RATE} Hz"))
    if info.duration > MAX_SECONDS:
        out.append(Violation(FILE, "header", f"{info.duration:.0f} s exceeds the limit of {MAX_SECONDS} s; refused unread"))
        return None
    if session_seconds is not None and info.duration + 0.5 / 30 < session_seconds:
        out.append(Violation(FILE, "header", f"audio lasts {info.duration:.2f} s, shorter than the session ({session_seconds:.2f} s)"))
    peak = 0.0
    for block in sf.blocks(str(path), blocksize=1 << 18, dtype="float32", always_2d=True):
        peak = max(peak, float(np.abs(block).max(initial=0.0)))
    if peak < SILENCE_PEAK:
        out.append(Violation(FILE, "samples", f"silent (peak {peak:.2e} < {SILENCE_PEAK})"))
    return info if len(out) == before else None


def load_mono(path: Path, seconds: float | None = None) -> np.ndarray:
    """Audio as float32 mono at the analysis rate, optionally cut to the first `seconds`."""
    info = sf.info(str(path))
    frames = -1 if seconds is None else int(np.ceil(seconds * info.samplerate)) + 1
    y, rate = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    y = y[:, 0] if y.shape[1] == 1 else y.mean(axis=1)  # a mean over one channel is a copy
    if rate != contract.SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=rate, target_sr=contract.SAMPLE_RATE, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32)
