"""The shipped noise process: N(0, I) frames with the stated correlation, one sequence per track, fitted to the music's motion."""

import numpy as np
import pytest

from lume_v6_dagster import contract, noise, temporal
from lume_v6_dagster.acceptance import measure
from lume_v6_dagster.noise import NoiseProcess


def test_ar1_frames_are_standard_normal_with_the_stated_correlation():
    z = NoiseProcess(0.9).sample(20_000, seed=3)
    assert z.shape == (20_000, 64) and z.dtype == np.float32
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.03  # each frame is what the generator was trained on
    assert abs(np.mean(z[1:] * z[:-1]) - 0.9) < 0.02
    assert np.array_equal(z, NoiseProcess(0.9).sample(20_000, seed=3))


def test_rho_zero_is_fresh_noise_every_frame():
    assert np.array_equal(NoiseProcess(0.0).sample(50, seed=1), np.random.default_rng(1).standard_normal((50, 64)).astype(np.float32))


def test_each_track_gets_its_own_sequence_from_a_fresh_start():
    track = np.repeat([0, 1], 500)
    z = NoiseProcess(0.99, dim=4096).for_tracks(track, seed=0)
    within = np.mean(z[498] * z[499])
    across = np.mean(z[499] * z[500])  # the last frame of one track, the first of the next
    assert within > 0.9 and abs(across) < 0.1


def test_a_model_without_a_recorded_process_draws_fresh_noise_and_an_unknown_one_is_refused():
    assert NoiseProcess.from_dict(None) == NoiseProcess(0.0)
    assert NoiseProcess.from_dict(NoiseProcess(0.93).as_dict()) == NoiseProcess(0.93)
    with pytest.raises(ValueError, match="unknown noise process 'pink'"):
        NoiseProcess.from_dict({"kind": "pink", "rho": 0.5})


def test_fit_recovers_the_correlation_of_music_that_moves_like_ar1():
    """A generator that passes its noise through: the fitted rho is the real music's own."""
    track = np.repeat(np.arange(4), 900)
    arrays = {"t": np.tile(np.arange(900) / 30.0, 4), "track": track, "latent": NoiseProcess(0.95).for_tracks(track, seed=7) * 6 - 40}
    process, scan = noise.fit(lambda rows, z: z * 6 - 40, arrays, windows=16)
    assert process.rho == 0.95 and [r["rho"] for r in scan] == list(noise.RHO_GRID)
    best = min(scan, key=lambda r: r["mismatch"])
    assert abs(best["change_ratio"] - 1) < 0.05 and scan[0]["change_ratio"] > 3  # fresh noise would flicker


def test_figures_over_time_see_flicker_that_per_frame_figures_cannot():
    rng = np.random.default_rng(0)
    real = NoiseProcess(0.95).sample(3000, seed=1).reshape(10, 300, 64)
    shuffled = real.reshape(-1, 64)[rng.permutation(3000)].reshape(10, 300, 64)  # the same frames, in another order
    same = temporal.compare(real, real)
    assert same["change_ratio"] == 1.0 and same["lag1"] == same["lag1_real"]
    flicker = temporal.compare(shuffled, real)
    assert flicker["change_ratio"] > 3 and flicker["lag1"] < 0.1 < 0.9 < flicker["lag1_real"]


class _Frames:
    """A shipped path whose frames are the body's own first dims (the music below is made the same way), plus noise."""

    def __init__(self, flicker: float):
        self.flicker = flicker

    def frames(self, conditioning, noise):
        body = conditioning[:, contract.DYNAMICS_SLICE]
        return body[:, :64] * 6 - 40 + self.flicker * noise, body[:, 64:80] + self.flicker * noise[:, :16]


def test_over_time_detail_reads_each_mode_and_the_controls_san_makes():
    """A path that reproduces the music and its controls moves as they do, in every mode and control; one that flickers does not."""
    track, modes = np.repeat([0, 1], 900), np.repeat([0, 3], 900)
    cond = np.zeros((1800, contract.CONDITIONING_DIM), np.float32)
    cond[np.arange(1800), contract.MODE_SLICE.start + modes] = 1.0
    cond[:, contract.DYNAMICS_SLICE] = NoiseProcess(0.95, dim=contract.DYNAMICS_DIM).for_tracks(track, seed=1)
    body = cond[:, contract.DYNAMICS_SLICE]
    val = {"t": np.tile(np.arange(900) / 30.0, 2), "track": track, "conditioning": cond,
           "latent": body[:, :64] * 6 - 40, "controls": body[:, 64:80]}
    exact = measure.over_time_detail(_Frames(0.0), NoiseProcess(0.0), val, 4)
    assert set(exact) == {"sky_garden", "iridescent_beauty", "controls", "loudness_db", "onset_strength"}
    for row in exact.values():
        assert row["change_ratio"] == pytest.approx(1.0) and row["lag1"] == pytest.approx(row["lag1_real"]) and row["windows"] > 0
    flicker = measure.over_time_detail(_Frames(3.0), NoiseProcess(0.0), val, 4)
    assert all(row["change_ratio"] > 2 and row["lag1"] < row["lag1_real"] - 0.2 for row in flicker.values())
