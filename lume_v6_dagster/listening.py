"""Listening previews: what a person hears before signing off gate 9.

One held-out body sequence (real dynamics from a validation track) is played through the
shipped one-step path, ConditioningEncoder -> FlowGenerator1Step, frame by frame at the pair
rate and batch 1 as on the phone, once per mode and once per emotion, with the same random draws
through the process the model ships with for the clip's mode (`noise.NoiseProcess`), as the app draws it,
and with that mode's glide of the frames' level.
The log-mel frames go back to audio with librosa's mel inversion (NNLS to a linear
spectrogram, then Griffin-Lim) at the pairs' STFT and mel settings. The track's own audio
through the same mel round trip is the reference: it is what the inversion alone does.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

from lume_v6_dagster import contract, plots
from lume_v6_dagster.atomic_files import atomic_path, write_json
from lume_v6_dagster.pairs import N_FFT, Pairs, PairsConfig

GRIFFIN_LIM_ITERATIONS = 32
PEAK = 0.99  # a clip louder than this is scaled down, never clipped
# A spawned inversion process takes ~10 s here to import and warm up (librosa's JIT, matplotlib),
# while a 5-s clip inverts in ~2 s and a 20-s one in ~5 s (measured on 2 cores): below this
# length one process finishes sooner and spends a fraction of the CPU.
POOL_MIN_SECONDS = 10.0


@dataclass(frozen=True)
class Clip:
    name: str  # file stem: v6-sky_garden, v6-emotion-release, v5, reference
    model: str  # V6, V5 or reference
    mode: str | None
    emotion: str | None
    seconds: float
    wav: str
    spectrogram: str


@dataclass(frozen=True)
class Window:
    """A body sequence on a dense grid at the pair rate: real frames, gaps held from the last one."""

    track_id: str
    start: float  # seconds into the session
    conditioning: np.ndarray  # (F, 141) as recorded: the track's mode and emotion
    latent: np.ndarray  # (F, 64) dB: the track's own music
    real_share: float  # frames that are real pairs, not held across a dropout


def body_window(pairs: Pairs, seconds: float, pair_hz: float) -> Window:
    """The `seconds` of the track with the most real pairs (gaps are dropouts or low confidence)."""
    n = int(round(seconds * pair_hz))
    index = np.round(pairs.t * pair_hz).astype(np.int64)  # grid slot of each pair
    if index[-1] - index[0] + 1 < n:
        raise ValueError(f"{pairs.track_id}: {(index[-1] - index[0] + 1) / pair_hz:.1f} s of pairs, shorter than a {seconds:.0f} s clip")
    present = np.zeros(index[-1] + 1, dtype=np.int64)
    present[index] = 1
    counts = np.convolve(present, np.ones(n, dtype=np.int64), mode="valid")[index[0]:]
    first = index[0] + int(np.argmax(counts))
    rows = np.searchsorted(index, np.arange(first, first + n), side="right") - 1  # last real pair at or before each slot
    return Window(pairs.track_id, first / pair_hz, pairs.conditioning[rows], pairs.target_latent[rows], float(counts.max() / n))


def with_labels(conditioning: np.ndarray, mode: int | None = None, emotion: int | None = None) -> np.ndarray:
    """The same body with the mode and/or emotion one-hot set for every frame."""
    out = conditioning.copy()
    for value, part in ((mode, contract.MODE_SLICE), (emotion, contract.EMOTION_SLICE)):
        if value is not None:
            out[:, part] = 0.0
            out[:, part.start + value] = 1.0
    return out


@torch.no_grad()
def one_step_frames(encoder: torch.nn.Module, generator: torch.nn.Module, conditioning: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(F, 64) dB frames, one batch-1 call per frame, as the app calls the exported packages."""
    width = encoder.cfg.in_dim  # 141 for V6, 64 for the V5 recipe
    frames = [generator(encoder(torch.from_numpy(conditioning[i:i + 1, :width])), torch.from_numpy(noise[i:i + 1]))
              for i in range(len(conditioning))]
    return torch.cat(frames).numpy()


def to_audio(mel_db: np.ndarray, pair_hz: float, seed: int) -> np.ndarray:
    """Log-mel dB frames (F, 64) -> mono waveform at the analysis rate, via librosa's mel inversion.

    As `librosa.feature.inverse.mel_to_stft` (NNLS onto the pairs' mel bank), on power scaled to a
    maximum of 1: NNLS is scale-equivariant, but its L-BFGS tolerance is absolute, and loud
    generated frames took minutes per clip unscaled (1.5 s scaled).
    """
    hop = PairsConfig(pair_hz=pair_hz).hop
    power = librosa.db_to_power(mel_db.T.astype(np.float64))
    scale = float(power.max())
    basis = librosa.filters.mel(sr=contract.SAMPLE_RATE, n_fft=N_FFT, n_mels=contract.LATENT_DIM)
    stft = np.sqrt(librosa.util.nnls(basis, power / scale) * scale)
    y = librosa.griffinlim(stft, n_iter=GRIFFIN_LIM_ITERATIONS, hop_length=hop, n_fft=N_FFT, random_state=seed,
                           length=(len(mel_db) - 1) * hop)  # centred frames: F frames span (F - 1) hops
    peak = float(np.abs(y).max())
    return (y * (PEAK / peak if peak > PEAK else 1.0)).astype(np.float32)


def _write(out_dir: Path, name: str, mel_db: np.ndarray, title: str, pair_hz: float, seed: int) -> tuple[str, str, float]:
    y = to_audio(mel_db, pair_hz, seed)
    with atomic_path(out_dir / f"{name}.wav", suffix=".wav") as tmp:
        sf.write(tmp, y, contract.SAMPLE_RATE, subtype="PCM_16", format="WAV")
    plots.spectrogram(mel_db, contract.SAMPLE_RATE, PairsConfig(pair_hz=pair_hz).hop, title, out_dir / f"{name}.png")
    return f"{name}.wav", f"{name}.png", len(y) / contract.SAMPLE_RATE


def inversion_workers(seconds: float, available: int) -> int:
    """Processes for a session's mel inversions: a pool only where clips are long enough to repay starting it."""
    return available if seconds >= POOL_MIN_SECONDS else 1


def render(out_dir: Path, pairs: Pairs, v6: tuple, v5: tuple, seconds: float,
           pair_hz: float = PairsConfig().pair_hz, seed: int = 0, workers: int = 1) -> list[Clip]:
    """Every clip of one listening session, written to `out_dir` with previews.json; deterministic for a seed.

    `v6`, `v5`: (encoder, one-step generator, noise process) of each model.

    The models run here, frame by frame; the mel inversions (seconds each, held by the GIL)
    run in `workers` processes, and each clip's Griffin-Lim is seeded alone, so the files do
    not depend on how many.
    """
    window = body_window(pairs, seconds, pair_hz)
    cond = window.conditioning
    own_mode = int(contract.modes_of(cond[:1])[0])
    emotion = int(np.bincount(cond[:, contract.EMOTION_SLICE].argmax(1), minlength=len(contract.EMOTIONS)).argmax())
    jobs = [(f"v6-{m}", "V6", i, emotion, with_labels(cond, i, emotion)) for i, m in enumerate(contract.MODES)]
    jobs += [(f"v6-emotion-{e}", "V6", own_mode, i, with_labels(cond, own_mode, i)) for i, e in enumerate(contract.EMOTIONS) if i != emotion]
    jobs += [("v5", "V5", None, None, cond)]
    clips, mels, titles = [], [], []
    for name, model, mode, emo, c in jobs:
        encoder, generator, process = v6 if model == "V6" else v5
        played = own_mode if mode is None else mode
        noise = process.sample(len(cond), seed, played)  # the same draws, through the clip's mode's process
        mels.append(process.smooth(one_step_frames(encoder, generator, c, noise), played))  # and its glide, as the app plays it
        titles.append(f"{model}: " + (f"{contract.MODES[mode]}, {contract.EMOTIONS[emo]}" if mode is not None else "no mode or emotion input"))
        clips.append((name, model, contract.MODES[mode] if mode is not None else None, contract.EMOTIONS[emo] if emo is not None else None))
    mels.append(window.latent)
    titles.append(f"reference: {pairs.track_id} through the mel round trip")
    clips.append(("reference", "reference", contract.MODES[own_mode], None))
    args = ([out_dir] * len(clips), [c[0] for c in clips], mels, titles, [pair_hz] * len(clips), [seed] * len(clips))
    if workers > 1:
        with ProcessPoolExecutor(min(workers, len(clips)), mp_context=multiprocessing.get_context("spawn")) as pool:
            written = list(pool.map(_write, *args))
    else:
        written = list(map(_write, *args))
    clips = [Clip(*c[:4], length, wav, png) for c, (wav, png, length) in zip(clips, written)]
    write_json(out_dir / "previews.json", {"track_id": window.track_id, "start_seconds": window.start, "seconds": seconds,
                                           "noise": {"V6": v6[2].as_dict(), "V5": v5[2].as_dict()},
                                           "real_share": window.real_share, "seed": seed, "clips": [asdict(c) for c in clips]})
    return clips
