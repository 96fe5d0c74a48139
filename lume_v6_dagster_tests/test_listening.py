"""Listening previews: every clip is rendered through the one-step path, has the requested length, is not silent, and repeats."""

import json
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from lume_v6_dagster import contract, listening
from lume_v6_dagster.dataset import build_split
from lume_v6_dagster.models.flow import OneStepGenerator
from lume_v6_dagster.noise import ModeNoise, NoiseProcess
from lume_v6_dagster.pairs import read_pairs
from lume_v6_dagster.training.flow_training import build_models

# Sky Garden's noise held still for the whole clip, Turquoise Alcove's fresh every frame.
PER_MODE = NoiseProcess((ModeNoise(0.0, 1.0), ModeNoise(0.0, 0.0), ModeNoise(0.2, 0.8), ModeNoise(0.1, 1.0), ModeNoise(0.1, 0.95)))


def models(stats, in_dim, process=NoiseProcess.same()):
    enc, flow = build_models(in_dim, stats, seed=0)
    return enc.eval(), OneStepGenerator(flow.eval()), process


def test_clips_have_the_requested_length_are_not_silent_and_repeat(pairs_paths, tmp_path):
    split = build_split(pairs_paths)
    pairs = read_pairs(pairs_paths[split.val[0]])
    v6, v5 = models(split.stats, contract.CONDITIONING_DIM, PER_MODE), models(split.stats, contract.V5_DYNAMICS_DIM)
    clips = listening.render(tmp_path / "a", pairs, v6, v5, seconds=2.0, seed=4)
    names = {c.name for c in clips}
    assert {*(f"v6-{m}" for m in contract.MODES), "v5", "reference"} <= names
    assert len(names) == len(contract.MODES) + (len(contract.EMOTIONS) - 1) + 2  # the window's own emotion is a mode clip
    for clip in clips:
        audio, rate = sf.read(tmp_path / "a" / clip.wav)
        assert rate == contract.SAMPLE_RATE and abs(len(audio) / rate - 2.0) < 0.05, clip
        assert np.sqrt((audio ** 2).mean()) > 1e-3 and np.abs(audio).max() <= 1.0, clip
        assert (tmp_path / "a" / clip.spectrogram).stat().st_size > 1000
    again = listening.render(tmp_path / "b", pairs, v6, v5, seconds=2.0, seed=4, workers=2)  # inversions in two processes
    assert [c.name for c in again] == [c.name for c in clips]
    assert all((tmp_path / "a" / c.wav).read_bytes() == (tmp_path / "b" / c.wav).read_bytes() for c in again)
    previews = json.loads((tmp_path / "a" / "previews.json").read_text())
    assert previews["track_id"] == split.val[0] and 0 < previews["real_share"] <= 1
    assert previews["noise"] == {"V6": PER_MODE.as_dict(), "V5": NoiseProcess.same().as_dict()}  # what each clip was drawn with
    held, fresh = (_change_db(tmp_path / "a" / f"v6-{m}.wav") for m in ("sky_garden", "turquoise_alcove"))
    assert held < 0.5 * fresh, (held, fresh)  # each mode's clip drawn through its own mode's process, read back from the files


def _change_db(wav: Path) -> float:
    """Mean frame-to-frame change of the clip's 64-band log-mel at 30 Hz (dB), measured on the audio file."""
    audio, rate = sf.read(wav)
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=audio, sr=rate, n_fft=2048, hop_length=rate // 30, n_mels=64))
    return float(np.abs(np.diff(mel, axis=1)).mean())


def test_only_clips_long_enough_to_repay_a_pool_are_inverted_in_one():
    assert listening.inversion_workers(2.0, 2) == 1  # the tiny profile's clips: one process
    assert listening.inversion_workers(20.0, 2) == 2 and listening.inversion_workers(20.0, 1) == 1  # a listener's: every core


def test_body_window_holds_the_last_frame_across_a_gap_and_picks_the_fullest_stretch(pairs_paths):
    pairs = read_pairs(next(iter(pairs_paths.values())))
    keep = np.ones(len(pairs.t), dtype=bool)
    keep[30:60] = False  # a second of dropout near the start
    pairs.t, pairs.conditioning, pairs.target_latent = pairs.t[keep], pairs.conditioning[keep], pairs.target_latent[keep]
    window = listening.body_window(pairs, 5.0, 30.0)
    assert len(window.conditioning) == 150 and window.start >= 2.0  # after the gap, all real frames
    assert window.real_share == 1.0
