"""The development set: real music and real motion from public packages, as capture folders.

The simulator's music is a few synthetic tones, and a recipe tuned on it alone did not carry
over to real music. This set is what a first week of real captures looks like: a few short
sessions per mode, with music a person wrote and motion a person performed.

- Music: Bach chorales from music21's corpus (pinned release), arranged per mode (the
  instruments and textures of the mode table in docs/capture.md) and rendered by FluidSynth
  through pretty_midi's General MIDI SoundFont (TimGM6mb).
- Motion: the motion-capture clips of DeepMimic that ship in pybullet's `pybullet_data`
  (dance, walk, run, jump, spin, cartwheel, roll, crawl), read from the pinned wheel without
  installing it, played at the music's tempo, and turned into the 128-D body dynamics the
  phone writes (its eight blocks, standardised on the clip library).

Every source file is checked against its pinned sha256 and named in the capture root's
`manifest.json`, so a rebuilt set is the same set or an error.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import subprocess
import sys
import tarfile
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import ndimage, signal
from scipy.spatial.transform import Rotation

from lume_v6_dagster import contract
from lume_v6_dagster.atomic_files import atomic_dir, write_json
from lume_v6_dagster.simulate import ENERGY, FPS, TEMPO  # the same tempo and energy per emotion as the simulator's

SR = contract.SAMPLE_RATE

# pybullet's wheels and sdist all carry data/motions; only these clips' bytes are trusted.
MOTION_PACKAGE = "pybullet==3.2.7"
CLIP_SHA256 = {
    "dance_a": "15ef3731f594edc9ed078170f1075815cc164acaca9e35a46db12a31ac64b717",
    "dance_b": "b5a9d7a3f2304f6242776d7ff6d19d1f6bcb98d78d68622761c3843b614a92b5",
    "walk": "32d082c3599bc40aac50b1afa196ff1e2cf3842bb40f0541ab088845f6328a41",
    "run": "2cbe488023b243e5769299158ce7c78875ec4b701a2ffe6c0beeaf83d16ca87b",
    "spin": "9614f10b92e7a8b123990ad5bcfafc65aa4d8fa8ac7f10ade3c3591122d34425",
    "jump": "a433557e94b193d8a95530572a0e32f387eb6d9996987b4216efb65444c3c641",
    "cartwheel": "17453459a40ec4ea08346072748ae3c7c384b49e619753e9779637fa8a9f7c49",
    "crawl": "104a3b675131a43e7a214e24c0ed631c6a0d814b85c8b66b71ce63b23a5731ae",
    "roll": "50d75c2243b2859f8dcae4ad8fa14b59054dd9ee529b4fb52ec14470cd982c55",
}
SF2_SHA256 = "82475b91a76de15cb28a104707d3247ba932e228bada3f47bba63c6b31aaf7a1"  # pretty_midi 0.2.11's TimGM6mb.sf2
CLIPS = {  # emotion -> clips, taken in turn by track: what the dancer does in that emotion
    "still": ("walk",), "open": ("dance_a",), "inward": ("roll", "crawl"),
    "energetic": ("dance_b", "jump", "run"), "release": ("spin", "cartwheel"),
}
# DeepMimic humanoid frame: dt, root position (3), root rotation, then the joints in this order;
# quaternions are (w, x, y, z), knees and elbows one angle.
JOINTS = (("chest", 4), ("neck", 4), ("rhip", 4), ("rknee", 1), ("rankle", 4), ("rshoulder", 4), ("relbow", 1),
          ("lhip", 4), ("lknee", 1), ("lankle", 4), ("lshoulder", 4), ("lelbow", 1))


@dataclass(frozen=True)
class Arrangement:
    """How one mode plays a chorale: a GM program per voice (None: silent), its transposition,
    the tempo factor and the mode's texture (drums, drone, sparse bells, reverb, legato)."""
    programs: tuple[int | None, int | None, int | None, int | None]
    transpose: tuple[int, int, int, int] = (0, 0, 0, 0)
    tempo: float = 1.0
    legato: float = 1.0
    drums: bool = False
    drone: int | None = None
    bells_every: int = 0
    reverb: float = 0.0


ARRANGEMENTS = {  # mode id -> arrangement, after the mode table (docs/capture.md)
    0: Arrangement((88, 89, 89, 89), (12, 0, 0, 0), tempo=0.5, legato=1.6),  # sky garden: slow-attack pads
    1: Arrangement((11, 46, 46, 32), (12, 0, 0, 0), reverb=0.45),  # turquoise alcove: vibraphone, harp, reverb
    2: Arrangement((12, None, None, 38), (0, 0, 0, -12), drums=True),  # radiant underground: sub bass, hand drums
    3: Arrangement((6, 8, 10, 0), (12, 12, 12, 0)),  # iridescent beauty: harpsichord, celesta, music box
    4: Arrangement((14, None, None, None), (12, 0, 0, 0), tempo=0.5, drone=48, bells_every=2),  # aurora veil
}


@dataclass(frozen=True)
class DevTrack:
    track_id: str
    mode: int
    emotions: tuple[int, ...]
    chorales: tuple[str, ...]  # music21 corpus paths, relative to the corpus
    seconds: float
    seed: int


def plan(n_per_mode: int = 2, seconds: float = 60.0, seed: int = 0) -> list[DevTrack]:
    """`n_per_mode` sessions per mode; every session visits every emotion, and no chorale is used twice."""
    chorales = _chorales()
    n_e, tracks = len(contract.EMOTIONS), []
    for i in range(n_per_mode * len(contract.MODES)):
        mode, k = i % len(contract.MODES), i // len(contract.MODES)
        emotions = tuple((k + mode + j) % n_e for j in range(n_e))
        pieces = tuple(chorales[(i * 6 + j) % len(chorales)] for j in range(6))
        slug = contract.MODES[mode].replace("_", "-")
        tracks.append(DevTrack(f"d{i + 1:02d}-{slug}", mode, emotions, pieces, seconds, seed * 1000 + i))
    return tracks


def coverage_thresholds(n_per_mode: int, seconds: float) -> dict:
    """Gate 1 for a set this size: every track, and half of each mode x emotion cell's planned minutes."""
    return {"min_tracks": n_per_mode * len(contract.MODES),
            "min_cell_minutes": round(0.5 * n_per_mode * seconds / 60 / len(contract.EMOTIONS), 3)}


def build(out_dir: Path, n_per_mode: int = 2, seconds: float = 60.0, seed: int = 0, cache: Path | None = None,
          workers: int | None = None, progress=None) -> list[Path]:
    """Write the development set's capture folders and `manifest.json` (sources and their sha256)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = motion_clips(Path(cache or out_dir.parent / "cache"))
    tracks = plan(n_per_mode, seconds, seed)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = pool.map(write_track, tracks, [out_dir] * len(tracks), [clips] * len(tracks))
        paths = list(progress(futures, total=len(tracks)) if progress else futures)
    write_json(out_dir / "manifest.json", _manifest(tracks))
    return paths


def _manifest(tracks: list[DevTrack]) -> dict:
    import music21

    corpus = Path(music21.__file__).parent / "corpus"
    return {
        "built_by": "lume_v6_dagster.devset",
        "sources": {"music21": music21.__version__, "soundfont": {"file": "pretty_midi/TimGM6mb.sf2", "sha256": SF2_SHA256},
                    "motion": {"package": MOTION_PACKAGE, "clips": CLIP_SHA256}},
        "tracks": {t.track_id: {"title": f"{contract.MODE_TITLES[t.mode]}, development set", "mode": contract.MODES[t.mode],
                                "emotions": [contract.EMOTIONS[e] for e in t.emotions],
                                "chorales": {c: _sha256((corpus / c).read_bytes()) for c in t.chorales}} for t in tracks},
    }


def write_track(track: DevTrack, out_dir: Path, clips: dict[str, np.ndarray]) -> Path:
    """One capture folder, written atomically: the arranged music and the dancer that follows its tempo."""
    rng = np.random.default_rng(track.seed)
    segments = _segments(track)
    notes, onsets = arrange(track, segments, rng)
    audio = render(notes, ARRANGEMENTS[track.mode], track.seconds + 0.5)
    n = int(track.seconds * FPS)
    t = np.arange(n) / FPS + rng.uniform(0, 0.002, n)
    dynamics = body_dynamics(_dance(track, segments, onsets, clips, n), library_stats(clips))
    confidence = np.clip(rng.beta(20, 1.5, n), 0, 1).astype(np.float32)
    start = float(rng.uniform(5.0, track.seconds - 5.0))
    dropout = (round(start, 3), round(start + float(rng.uniform(0.5, 2.0)), 3))
    lost = (t >= dropout[0]) & (t < dropout[1])
    dynamics[lost], confidence[lost] = 0.0, rng.uniform(0.0, 0.2, lost.sum()).astype(np.float32)
    target = Path(out_dir) / track.track_id
    with atomic_dir(target, overwrite=True) as tmp:
        (tmp / "session.jsonl").write_text("".join(json.dumps(ev) + "\n" for ev in _events(track, segments, dropout, n)))
        np.savez(tmp / "dynamics.npz", t=t, dynamics=dynamics, confidence=confidence)
        sf.write(tmp / "audio.wav", audio, SR, subtype="PCM_16")
    return target


def _segments(track: DevTrack) -> list[tuple[float, float, int]]:
    bounds = np.linspace(0.0, track.seconds, len(track.emotions) + 1)
    return [(float(bounds[k]), float(bounds[k + 1]), e) for k, e in enumerate(track.emotions)]


def _events(track: DevTrack, segments, dropout, n_frames: int) -> list[dict]:
    start = {"type": "session_start", "schema": contract.CAPTURE_SCHEMA, "track_id": track.track_id, "mode": track.mode,
             "emotion": contract.EMOTIONS[segments[0][2]], "fps": FPS, "device": "development set (music21 + pybullet_data)",
             "started_at": "2026-12-01T20:00:00Z"}
    timed = [{"type": "emotion", "t": round(s, 3), "emotion": contract.EMOTIONS[e]} for s, _, e in segments[1:]]
    timed.insert(next((i for i, ev in enumerate(timed) if ev["t"] > dropout[0]), len(timed)),
                 {"type": "dropout", "t0": dropout[0], "t1": dropout[1]})
    return [start, *timed, {"type": "session_end", "t": round(track.seconds, 3), "frames": n_frames}]


# --- music ---------------------------------------------------------------------------------


def _chorales() -> list[str]:
    """Four-voice Bach chorales of music21's corpus, as corpus-relative paths, in a fixed order."""
    from music21 import corpus

    root = Path(corpus.__file__).parent
    return sorted(str(Path(p).relative_to(root)) for p in corpus.getComposer("bach")
                  if Path(p).suffix == ".mxl" and Path(p).name.startswith("bwv"))


def _beat_clock(segments, tempo_factor: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of beats 0, 1/4, 1/2, ... (quarter-beat grid) and the emotion at each: tempo follows the emotion."""
    times, emos, t = [], [], 0.0
    while t < seconds + 1.0:
        e = next((e for s, end, e in segments if s <= t < end), segments[-1][2])
        times.append(t)
        emos.append(e)
        t += 60.0 / (TEMPO[contract.EMOTIONS[e]] * tempo_factor) / 4
    return np.array(times), np.array(emos)


def arrange(track: DevTrack, segments, rng) -> tuple[list[tuple], np.ndarray]:
    """The track's chorales, one after another, as (voice, start s, end s, pitch, velocity) notes
    (voice 4 = drums, 5 = drone); returns them and the note onsets a dancer hears (s)."""
    from music21 import corpus

    arr = ARRANGEMENTS[track.mode]
    grid, grid_emo = _beat_clock(segments, arr.tempo, track.seconds)
    at = lambda beat: float(np.interp(beat * 4, np.arange(len(grid)), grid))  # noqa: E731
    energy_at = lambda beat: ENERGY[contract.EMOTIONS[grid_emo[min(int(beat * 4), len(grid) - 1)]]]  # noqa: E731
    notes, offset = [], 0.0
    for path in track.chorales:
        score = corpus.parse(path).stripTies()
        parts = score.parts[:4]
        for voice, part in enumerate(parts):
            if arr.programs[voice] is None:
                continue
            for n in part.flatten().notes:
                beat = offset + float(n.offset)
                if arr.bells_every and (int(beat) % arr.bells_every or rng.random() > 0.25 + 0.5 * energy_at(beat)):
                    continue
                end = beat + float(n.quarterLength) * arr.legato
                for p in n.pitches:
                    notes.append((voice, at(beat), at(end), p.midi + arr.transpose[voice], _velocity(energy_at(beat))))
        length = float(score.highestTime)
        if arr.drone is not None and len(parts) > 3 and parts[3].flatten().notes:
            tonic = parts[3].flatten().notes[-1].pitches[0].midi % 12 + 36
            notes += [(5, at(offset), at(offset + length), tonic + d, 50) for d in (0, 7)]
        if arr.drums:
            notes += _drums(offset, length, at, energy_at, rng)
        offset += length + 1.0
        if at(offset) > track.seconds + 0.5:
            break
    onsets = np.array(sorted({round(n[1], 3) for n in notes if n[1] < track.seconds}))
    return notes, onsets


def _velocity(energy: float) -> int:
    return int(np.clip(40 + 80 * energy, 1, 127))


def _drums(offset: float, length: float, at, energy_at, rng) -> list[tuple]:
    """Organic percussion: low conga on the beat, high conga and shaker off the beat as energy rises."""
    hits = []
    for k in range(int(length * 2)):
        beat = offset + k / 2
        e = energy_at(beat)
        if k % 2 == 0:
            hits.append((4, at(beat), at(beat) + 0.2, 64, _velocity(e)))
        elif rng.random() < e:
            hits.append((4, at(beat), at(beat) + 0.2, 63, _velocity(0.8 * e)))
        if e > 0.5 and rng.random() < e:
            hits.append((4, at(beat + 0.25), at(beat + 0.25) + 0.1, 82, _velocity(0.5 * e)))
    return hits


def render(notes: list[tuple], arr: Arrangement, seconds: float) -> np.ndarray:
    """FluidSynth with the General MIDI SoundFont; mono float32 at the contract's rate, peak 0.9."""
    import pretty_midi

    sf2 = importlib.resources.files("pretty_midi") / "TimGM6mb.sf2"
    if _sha256(sf2.read_bytes()) != SF2_SHA256:
        raise RuntimeError(f"{sf2}: sha256 differs from the pinned SoundFont's {SF2_SHA256[:12]}...; pin pretty_midi==0.2.11.post0")
    pm = pretty_midi.PrettyMIDI()
    programs = {**dict(enumerate(arr.programs)), 4: 0, 5: arr.drone or 0}
    voices = {v: pretty_midi.Instrument(program=programs[v], is_drum=v == 4) for v in sorted({n[0] for n in notes})}
    for voice, start, end, pitch, velocity in notes:
        if start < seconds:
            voices[voice].notes.append(pretty_midi.Note(velocity=velocity, pitch=int(pitch), start=start, end=max(end, start + 0.05)))
    pm.instruments.extend(voices.values())
    audio = pm.fluidsynth(fs=SR, synthesizer=str(sf2))
    audio = np.pad(audio, (0, max(0, int(seconds * SR) - len(audio))))[: int(seconds * SR)]
    if arr.reverb:
        tail = np.arange(int(1.5 * SR)) / SR
        ir = np.random.default_rng(1).standard_normal(len(tail)) * np.exp(-tail / arr.reverb)
        audio = audio + 0.05 * signal.oaconvolve(audio, ir)[: len(audio)]
    return (0.9 * audio / max(np.abs(audio).max(), 1e-9)).astype(np.float32)


# --- motion --------------------------------------------------------------------------------


def motion_clips(cache: Path) -> dict[str, np.ndarray]:
    """The pinned clips as (frames, 44) arrays (column 0 = frame duration), from the package in `cache`
    (downloaded there with pip once, never installed); each clip's bytes checked against its sha256."""
    cache.mkdir(parents=True, exist_ok=True)
    archives = sorted(cache.glob("pybullet-*"))
    if not archives:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), MOTION_PACKAGE], check=True)
        archives = sorted(cache.glob("pybullet-*"))
    raw = _read_members(archives[0], {f"data/motions/humanoid3d_{name}.txt": name for name in CLIP_SHA256})
    clips = {}
    for name, sha in CLIP_SHA256.items():
        if name not in raw:
            raise RuntimeError(f"{archives[0]}: no data/motions/humanoid3d_{name}.txt (expected {MOTION_PACKAGE})")
        if _sha256(raw[name]) != sha:
            raise RuntimeError(f"{archives[0]}: humanoid3d_{name}.txt: sha256 {_sha256(raw[name])[:12]}... differs from the pinned {sha[:12]}...")
        clips[name] = np.asarray(json.loads(raw[name])["Frames"], dtype=np.float64)
    return clips


def _read_members(archive: Path, wanted: dict[str, str]) -> dict[str, bytes]:
    """Bytes of the archive members whose path ends with one of `wanted` (a wheel is a zip, an sdist a tar)."""
    found = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                if key := next((k for k in wanted if member.endswith(k)), None):
                    found[wanted[key]] = z.read(member)
    else:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if key := next((k for k in wanted if member.name.endswith(k)), None):
                    found[wanted[key]] = tar.extractfile(member).read()
    return found


def pose_features(frames: np.ndarray) -> np.ndarray:
    """Per clip frame: root height, up and forward axes, velocity, each joint's rotation vector or angle."""
    dt = frames[:, 0].clip(1e-3)
    root = Rotation.from_quat(frames[:, 4:8][:, [1, 2, 3, 0]])
    velocity = np.gradient(frames[:, 1:4], axis=0) / dt[:, None]
    cols = [frames[:, 2:3], root.apply([0, 1, 0]), root.apply([0, 0, 1]), velocity]
    i = 8
    for _, width in JOINTS:
        q = frames[:, i : i + width]
        cols.append(Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_rotvec() if width == 4 else q)
        i += width
    return np.hstack(cols)


def _play(clip: np.ndarray, clock: np.ndarray, fade: float = 0.3) -> np.ndarray:
    """The clip's pose features at clip times `clock` (seconds), looped with a crossfade of `fade`
    seconds at the seam, so the dancer has no jump where the clip starts over."""
    feats = pose_features(clip)
    times = np.concatenate([[0.0], np.cumsum(clip[:-1, 0])])
    length = times[-1] - fade
    at = lambda u: np.column_stack([np.interp(u, times, feats[:, j]) for j in range(feats.shape[1])])  # noqa: E731
    u = np.mod(clock, length)
    mix = np.clip(u / fade, 0.0, 1.0)[:, None]
    return mix * at(u) + (1 - mix) * at(u + length)


def _dance(track: DevTrack, segments, onsets: np.ndarray, clips: dict[str, np.ndarray], n: int) -> np.ndarray:
    """(n, features) poses at FPS: each emotion's clip, at its tempo, surging on the music's onsets."""
    t = np.arange(n) / FPS
    hits = np.zeros(n)
    np.add.at(hits, np.clip(np.searchsorted(t, onsets), 0, n - 1), 1.0)
    surge = signal.lfilter([1.0], [1, -np.exp(-1 / (0.2 * FPS))], hits)
    poses = []
    for start, end, e in segments:
        sel = (t >= start) & (t < end)
        name = CLIPS[contract.EMOTIONS[e]][(track.seed + e) % len(CLIPS[contract.EMOTIONS[e]])]
        speed = TEMPO[contract.EMOTIONS[e]] / 100.0 * (1.0 + 0.15 * np.tanh(surge[sel]))
        poses.append(_play(clips[name], np.cumsum(speed) / FPS))
    return ndimage.uniform_filter1d(np.vstack(poses), size=5, axis=0)


def _smooth(x: np.ndarray, seconds: float) -> np.ndarray:
    a = np.exp(-1.0 / max(seconds * FPS, 1.0))
    return signal.lfilter([1 - a], [1, -a], x, axis=0)


def _project(x: np.ndarray, block: int) -> np.ndarray:
    w = np.random.default_rng(200 + block).standard_normal((x.shape[1], contract.BLOCK_DIM)) / np.sqrt(x.shape[1])
    return x @ w


def _joint_columns() -> dict[str, slice]:
    """Where each joint sits in a pose row (after height, up, forward and velocity: 10 columns)."""
    cols, i = {}, 10
    for name, width in JOINTS:
        cols[name] = slice(i, i + (3 if width == 4 else 1))
        i = cols[name].stop
    return cols


JOINT_COLUMNS = _joint_columns()
GROUPS = (("root",), ("chest", "neck"), ("rshoulder", "relbow"), ("lshoulder", "lelbow"),
          ("rhip", "rknee", "rankle"), ("lhip", "lknee", "lankle"))  # the body parts whose speeds make the energy block


def _columns(pose: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    return np.hstack([pose[:, 7:10] if n == "root" else pose[:, JOINT_COLUMNS[n]] for n in names])


def raw_dynamics(pose: np.ndarray) -> np.ndarray:
    """(n, 128) body dynamics from poses at FPS, before standardisation: the phone's eight blocks."""
    vel = np.gradient(pose, axis=0) * FPS
    acc = _smooth(np.gradient(vel, axis=0) * FPS, 0.05)
    jerk = _smooth(np.gradient(acc, axis=0) * FPS, 0.1)
    speed_g = np.column_stack([np.linalg.norm(_columns(vel, g), axis=1) for g in GROUPS])
    speed = speed_g.sum(axis=1)
    energy = np.column_stack([np.log1p(speed_g), np.log1p(_smooth(speed_g, 0.5))]
                             + [np.log1p(_smooth(speed, s)) for s in (0.1, 0.5, 2.0, 8.0)])
    centred = speed - _smooth(speed, 2.0)
    power = _smooth(centred**2, 2.0) + 1e-6
    periodicity = np.column_stack([_smooth(centred * np.roll(centred, lag), 2.0) / power
                                   for lag in np.linspace(0.1 * FPS, 1.6 * FPS, 16).astype(int)])
    reach = {name: np.linalg.norm(pose[:, cols], axis=1) for name, cols in JOINT_COLUMNS.items()}
    extent = np.column_stack([*reach.values(), pose[:, 0], pose[:, 2], _smooth(np.linalg.norm(pose[:, 7:10], axis=1), 1.0),
                              reach["rshoulder"] + reach["lshoulder"]])
    peaks, _ = signal.find_peaks(_smooth(speed, 0.05), distance=int(0.2 * FPS), prominence=np.std(speed) * 0.3 + 1e-9)
    idx = np.arange(len(speed))
    last = np.concatenate([[0], peaks])[np.searchsorted(peaks, idx, side="right")]
    since = (idx - last) / FPS
    rate = np.zeros(len(speed))
    rate[peaks] = 1.0
    closure = np.column_stack([np.exp(-since / tau) for tau in (0.15, 0.3, 0.6, 1.2, 2.4)]
                              + [np.minimum(since, 4.0) / 2] + [_smooth(rate, s) * FPS for s in (2.0, 4.0, 8.0)]
                              + [_smooth(speed, 0.25) - _smooth(speed, 2.0), np.sign(np.gradient(_smooth(speed, 0.25)))]
                              + [np.sin(2 * np.pi * since), np.cos(2 * np.pi * since)])
    blocks = [pose, vel, acc, jerk]
    out = [_project(b, k) for k, b in enumerate(blocks)]
    return np.hstack(out + [_fit(b) for b in (energy, periodicity, extent, closure)])


def _fit(x: np.ndarray) -> np.ndarray:
    """A block of up to 16 columns as exactly 16 (a fixed mix of the columns fills the rest)."""
    if x.shape[1] >= contract.BLOCK_DIM:
        return x[:, : contract.BLOCK_DIM]
    extra = contract.BLOCK_DIM - x.shape[1]
    return np.hstack([x, x @ np.random.default_rng(300 + x.shape[1]).standard_normal((x.shape[1], extra)) / np.sqrt(x.shape[1])])


def library_stats(clips: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and spread of each dimension over every clip at its own speed: the phone's standardisation."""
    raw = np.vstack([raw_dynamics(_play(clip, np.arange(int(20 * FPS)) / FPS)) for clip in clips.values()])
    return raw.mean(axis=0), raw.std(axis=0) + 1e-6


def body_dynamics(pose: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    mean, std = stats
    return np.clip((raw_dynamics(pose) - mean) / std, -20, 20).astype(np.float32)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

