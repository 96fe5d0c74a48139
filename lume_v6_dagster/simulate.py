"""Synthetic capture sessions that a real capture app could have written.

Mode shapes the music's character (the mode table in docs/capture.md), emotion shapes tempo and energy,
and the dancer's 128-D dynamics follow the music's onsets, beat and the emotion's energy,
so every V6 acceptance gate has something real to measure.
"""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from lume_v6_dagster import contract
from lume_v6_dagster.atomic_files import atomic_dir, write_json

SR = contract.SAMPLE_RATE
FPS = 60.0
TEMPO = {"still": 64.0, "open": 88.0, "inward": 72.0, "energetic": 128.0, "release": 100.0}
ENERGY = {"still": 0.25, "open": 0.55, "inward": 0.4, "energetic": 0.95, "release": 0.7}


@dataclass(frozen=True)
class TrackPlan:
    track_id: str
    title: str
    mode: int
    emotions: tuple[int, ...]  # visited in order, equal-ish segments
    minutes: float
    seed: int


def plan_tracks(n_tracks: int, minutes: float, seed: int) -> list[TrackPlan]:
    """Modes round-robin; each session visits every emotion, rotated, so all cells are covered."""
    plans = []
    n_e = len(contract.EMOTIONS)
    for i in range(n_tracks):
        mode = i % len(contract.MODES)
        start = (i // len(contract.MODES)) % n_e
        emotions = tuple((start + k) % n_e for k in range(n_e))
        slug = contract.MODES[mode].replace("_", "-")
        title = f"{contract.MODE_TITLES[mode]} study {i // len(contract.MODES) + 1}"
        plans.append(TrackPlan(f"s{i + 1:02d}-{slug}", title, mode, emotions, minutes, seed * 1000 + i))
    return plans


# --- timeline --------------------------------------------------------------------------


def _segments(plan: TrackPlan, rng) -> list[tuple[float, float, int]]:
    """(start, end, emotion) segments covering the session."""
    total = plan.minutes * 60.0
    weights = rng.uniform(0.8, 1.2, len(plan.emotions))
    bounds = np.concatenate([[0.0], np.cumsum(weights / weights.sum()) * total])
    return [(float(bounds[k]), float(bounds[k + 1]), e) for k, e in enumerate(plan.emotions)]


def _beats(segments) -> tuple[np.ndarray, np.ndarray]:
    """Beat times and the emotion id at each beat; tempo follows the emotion."""
    times, emos = [], []
    t = 0.0
    for start, end, e in segments:
        period = 60.0 / TEMPO[contract.EMOTIONS[e]]
        t = max(t, start)
        while t < end:
            times.append(t)
            emos.append(e)
            t += period
    return np.array(times), np.array(emos, dtype=int)


# --- music -------------------------------------------------------------------------------


def _add(buf: np.ndarray, at: float, wave: np.ndarray) -> None:
    i = int(at * SR)
    n = min(len(wave), len(buf) - i)
    if n > 0:
        buf[i : i + n] += wave[:n]


def _tone(freqs, amps, seconds, attack, decay) -> np.ndarray:
    t = np.arange(int(seconds * SR), dtype=np.float32) / SR
    env = np.minimum(1.0, t / max(attack, 1e-3)) * np.exp(-t / decay)
    wave = sum(a * np.sin(2 * np.pi * f * t) for f, a in zip(freqs, amps))
    return (env * wave).astype(np.float32)


def _noise(n: int, rng, cutoff_hz: float, kind: str = "lowpass") -> np.ndarray:
    sos = signal.butter(2, cutoff_hz, btype=kind, fs=SR, output="sos")
    return signal.sosfilt(sos, rng.standard_normal(n)).astype(np.float32)


SCALE = np.array([0, 2, 4, 7, 9, 12, 14, 16])  # pentatonic semitones


def _music(mode: int, beats, beat_emo, n: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Audio for one mode; returns (audio, onset times, onset strengths) for the dancer."""
    buf = np.zeros(n, dtype=np.float32)
    energy = np.array([ENERGY[contract.EMOTIONS[e]] for e in beat_emo])
    onsets, strengths = [], []

    def hit(at, wave, strength):
        _add(buf, at, wave)
        onsets.append(at)
        strengths.append(strength)

    root = 110.0 * 2 ** (rng.integers(0, 5) / 12)
    for k, (at, e) in enumerate(zip(beats, energy)):
        note = root * 2 ** (SCALE[rng.integers(len(SCALE))] / 12)
        if mode == 0:  # Sky Garden: airy slow-attack pads every 4 beats
            if k % 4 == 0:
                hit(at, _tone([2 * note, 2.5 * note, 3 * note, 4 * note], [0.12, 0.08, 0.08, 0.04], 6.0, 1.5, 2.5) * (0.4 + e), 0.3 * e)
        elif mode == 1:  # Turquoise Alcove: liquid falling drops on 8ths
            for half in (0.0, 0.5):
                if rng.random() < 0.35 + 0.6 * e:
                    f0 = rng.uniform(600, 1500)
                    t = np.arange(int(0.18 * SR)) / SR
                    drop = np.sin(2 * np.pi * np.cumsum(f0 * np.exp(-t * 6)) / SR) * np.exp(-t / 0.05)
                    step = (beats[k + 1] - at) if k + 1 < len(beats) else 0.5
                    hit(at + half * step, (0.35 * (0.4 + e) * drop).astype(np.float32), 0.6 * e)
        elif mode == 2:  # Radiant Underground: kick + sub bass on beats, shaker off-beats
            t = np.arange(int(0.35 * SR)) / SR
            kick = np.sin(2 * np.pi * np.cumsum(45 + 75 * np.exp(-t * 25)) / SR) * np.exp(-t / 0.12)
            hit(at, (0.6 * (0.4 + e) * kick).astype(np.float32), 1.0 * e)
            _add(buf, at, _tone([note / 4], [0.25 * (0.4 + e)], 0.5, 0.01, 0.3))
            if rng.random() < e:
                shaker = rng.standard_normal(int(0.06 * SR)) * np.exp(-np.arange(int(0.06 * SR)) / (0.015 * SR))
                _add(buf, at + 30 / TEMPO[contract.EMOTIONS[beat_emo[k]]], (0.08 * e * shaker).astype(np.float32))
        elif mode == 3:  # Iridescent Beauty: bright, harmonically rich, evolving notes
            tilt = 0.5 + 0.45 * np.sin(2 * np.pi * at / 40.0)
            harm = np.arange(1, 11)
            hit(at, _tone(2 * note * harm, 0.1 * tilt ** (harm - 1), 0.6, 0.01, 0.25) * (0.4 + e), 0.7 * e)
        else:  # Aurora Veil: sparse high bells over a drone
            if rng.random() < 0.15 + 0.3 * e:
                f = rng.uniform(1200, 2600)
                hit(at, _tone([f, 2.76 * f, 5.4 * f], [0.15, 0.06, 0.03], 3.0, 0.002, 0.8) * (0.5 + e), 0.5 * e)

    if mode == 0:  # breathing air
        breath = 0.5 + 0.5 * np.sin(2 * np.pi * 0.1 * np.arange(n) / SR)
        buf += 0.02 * breath.astype(np.float32) * _noise(n, rng, 3000.0)
    elif mode == 1:  # reverb-heavy
        tail = np.arange(int(1.2 * SR)) / SR
        ir = (rng.standard_normal(len(tail)) * np.exp(-tail / 0.35)).astype(np.float32)
        buf = buf + 0.08 * signal.oaconvolve(buf, ir)[:n].astype(np.float32)
    elif mode == 4:  # sustained drone with slow beating
        t = np.arange(n, dtype=np.float64) / SR
        buf += (0.08 * np.sin(2 * np.pi * 55 * t) + 0.06 * np.sin(2 * np.pi * 82.7 * t)).astype(np.float32)
    peak = np.abs(buf).max()
    if peak > 0.95:
        buf *= 0.95 / peak
    return buf, np.array(onsets), np.array(strengths)


# --- dancer ------------------------------------------------------------------------------


def _smooth(x: np.ndarray, seconds: float) -> np.ndarray:
    a = np.exp(-1.0 / (seconds * FPS))
    return signal.lfilter([1 - a], [1, -a], x, axis=0)


def _dancer(mode: int, t, segments, onsets, strengths, rng) -> np.ndarray:
    """(N, 128) body dynamics that follow the music's onsets, beat and the emotion's energy."""
    n = len(t)
    emo = np.zeros(n, dtype=int)
    tempo = np.zeros(n)
    for start, end, e in segments:
        sel = (t >= start) & (t < end)
        emo[sel], tempo[sel] = e, TEMPO[contract.EMOTIONS[e]]
    energy = _smooth(np.array([ENERGY[contract.EMOTIONS[e]] for e in emo]), 1.5)
    impulses = np.zeros(n)
    np.add.at(impulses, np.clip(np.searchsorted(t, onsets), 0, n - 1), strengths)
    hit = signal.lfilter([1.0], [1, -np.exp(-1 / (0.15 * FPS))], impulses)
    phase = np.cumsum(tempo / 60.0 / FPS)
    since = t - np.concatenate([[0.0], onsets])[np.searchsorted(onsets, t, side="right")]
    drift = _smooth(rng.standard_normal((n, 3)), 4.0) * 6
    style = np.random.default_rng(mode).standard_normal(16)  # the mode's body style, same for all dancers
    sway = np.stack([np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)], 1) * energy[:, None]
    latent = {
        "posture": np.column_stack([drift, sway, np.ones(n)]),
        "velocity": np.column_stack([np.gradient(sway, axis=0) * FPS / 4, hit * energy, np.gradient(drift, axis=0) * FPS]),
        "acceleration": np.column_stack([np.gradient(np.gradient(sway, axis=0), axis=0) * FPS**2 / 20, np.gradient(hit) * FPS / 4]),
        "jerk": np.column_stack([np.gradient(np.gradient(hit)) * FPS**2 / 40, hit]),
        "energy": np.column_stack([hit * energy * 3, energy * 2, _smooth(hit, 1.0) * 2]),
        "periodicity": np.column_stack([np.sin(2 * np.pi * k * phase) * energy for k in (1, 2, 4)]
                                       + [np.cos(2 * np.pi * k * phase) * energy for k in (1, 2, 4)] + [tempo / 60 - 1.5]),
        "spatial_extent": np.column_stack([energy * 2, drift[:, :1] / 3, np.full(n, (mode - 2) / 2)]),
        "temporal_closure": np.column_stack([np.exp(-since / 0.5), np.minimum(since, 4) / 2, np.gradient(phase) * FPS / 2 - 1.5]),
    }
    blocks = []
    for b, name in enumerate(contract.DYNAMICS_BLOCKS):
        z = latent[name]
        w = np.random.default_rng(100 + b).standard_normal((z.shape[1], contract.BLOCK_DIM)) / np.sqrt(z.shape[1])
        offset = 0.5 * style if name in ("posture", "spatial_extent") else 0.0
        blocks.append(z @ w + offset + 0.15 * rng.standard_normal((n, contract.BLOCK_DIM)))
    return np.clip(np.hstack(blocks), -20, 20).astype(np.float32)


# --- one session -------------------------------------------------------------------------


def _dropouts(duration: float, rng) -> list[tuple[float, float]]:
    k = int(rng.integers(1, 4)) if duration >= 20 else 0
    starts = np.sort(rng.uniform(2.0, max(duration - 5.0, 2.1), k))
    return [(round(float(s), 3), round(float(s + rng.uniform(0.5, 3.0)), 3)) for s in starts]


def _events(plan: TrackPlan, segments, dropouts, duration, n_frames, rng) -> list[dict]:
    start = {"type": "session_start", "schema": contract.CAPTURE_SCHEMA, "track_id": plan.track_id,
             "mode": plan.mode, "emotion": contract.EMOTIONS[segments[0][2]], "fps": FPS,
             "device": "iPhone 16 Pro (simulated)", "started_at": f"2026-11-{1 + plan.seed % 28:02d}T20:00:00Z"}
    timed = [{"type": "emotion", "t": round(s, 3), "emotion": contract.EMOTIONS[e]} for s, _, e in segments[1:]]
    timed += [{"type": "dropout", "t0": a, "t1": b} for a, b in dropouts]
    timed += [{"type": "marker", "t": round(float(rng.uniform(0, duration)), 3), "label": "take note"}]
    timed.sort(key=lambda ev: ev.get("t", ev.get("t0")))
    return [start, *timed, {"type": "session_end", "t": round(duration, 3), "frames": n_frames}]


def simulate_track(plan: TrackPlan, out_dir: Path) -> Path:
    """Write one complete capture folder (atomically, as a finished copy would appear)."""
    rng = np.random.default_rng(plan.seed)
    duration = plan.minutes * 60.0
    segments = _segments(plan, rng)
    beats, beat_emo = _beats(segments)
    audio, onsets, strengths = _music(plan.mode, beats, beat_emo, int((duration + 0.5) * SR), rng)
    n_frames = int(duration * FPS)
    t = np.arange(n_frames) / FPS + rng.uniform(0, 0.002, n_frames)  # capture jitter, still increasing
    dynamics = _dancer(plan.mode, t, segments, onsets, strengths, rng)
    confidence = np.clip(rng.beta(20, 1.5, n_frames), 0, 1).astype(np.float32)
    dropouts = _dropouts(duration, rng)
    for a, b in dropouts:
        sel = (t >= a) & (t < b)
        confidence[sel] = rng.uniform(0.0, 0.2, sel.sum()).astype(np.float32)
        dynamics[sel] = 0.0
    events = _events(plan, segments, dropouts, duration, n_frames, rng)
    target = Path(out_dir) / plan.track_id
    with atomic_dir(target, overwrite=True) as tmp:
        (tmp / "session.jsonl").write_text("".join(json.dumps(ev) + "\n" for ev in events))
        np.savez(tmp / "dynamics.npz", t=t, dynamics=dynamics, confidence=confidence)
        sf.write(tmp / "audio.wav", audio, SR, subtype="PCM_16")
    return target


def simulate(n_tracks: int, minutes: float, out_dir: Path, seed: int = 0, workers: int | None = None, progress=None) -> list[Path]:
    """Write `n_tracks` capture folders and `manifest.json`; deterministic for a seed."""
    plans = plan_tracks(n_tracks, minutes, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = pool.map(simulate_track, plans, [out_dir] * len(plans))
        paths = list(progress(futures, total=len(plans)) if progress else futures)
    manifest = {"tracks": {p.track_id: {"title": p.title, "mode": contract.MODES[p.mode],
                                        "emotions": [contract.EMOTIONS[e] for e in p.emotions]} for p in plans}}
    write_json(out_dir / "manifest.json", manifest)
    return paths
