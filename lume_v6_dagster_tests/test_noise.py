"""The shipped noise process: N(0, I) frames that hold and jump as stated per mode, one sequence per track, fitted to each mode's music."""

import numpy as np
import pytest

from lume_v6_dagster import contract, noise, temporal
from lume_v6_dagster.acceptance import evaluate, measure
from lume_v6_dagster.noise import NoiseProcess
from lume_v6_dagster.training.profiles import get_profile


def _arrays(track: np.ndarray, modes: np.ndarray) -> dict[str, np.ndarray]:
    """Pairs-like arrays: each row's track and a conditioning with its mode one-hot."""
    cond = np.zeros((len(track), contract.CONDITIONING_DIM), np.float32)
    cond[np.arange(len(track)), contract.MODE_SLICE.start + modes] = 1.0
    return {"track": track, "conditioning": cond, "t": np.concatenate([np.arange((track == k).sum()) / 30.0 for k in np.unique(track)])}


def test_ar1_frames_are_standard_normal_with_the_stated_correlation():
    z = NoiseProcess.same(rho=0.9).sample(20_000, seed=3, mode=0)
    assert z.shape == (20_000, 64) and z.dtype == np.float32
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.03  # each frame is what the generator was trained on
    assert abs(np.mean(z[1:] * z[:-1]) - 0.9) < 0.02
    assert np.array_equal(z, NoiseProcess.same(rho=0.9).sample(20_000, seed=3, mode=0))


def test_held_frames_are_standard_normal_and_change_in_jumps():
    """At the lag-1 correlation of AR(1) 0.9, a process that holds and jumps moves far less on average, and by whole draws."""
    held = NoiseProcess.same(jump=0.1, rho=1.0).sample(50_000, seed=3, mode=2)
    ar1 = NoiseProcess.same(rho=0.9).sample(50_000, seed=3, mode=2)
    assert abs(held.mean()) < 0.05 and abs(held.std() - 1) < 0.03
    assert abs(np.mean(held[1:] * held[:-1]) - 0.9) < 0.02
    moved = np.abs(np.diff(held, axis=0)).max(1) > 0
    assert abs(moved.mean() - 0.1) < 0.01  # held exactly still between jumps
    assert np.abs(np.diff(held, axis=0)).mean() < 0.4 * np.abs(np.diff(ar1, axis=0)).mean()


def test_the_vectorised_process_is_the_per_frame_rule_the_app_runs():
    rng = np.random.default_rng(0)
    e, u = rng.standard_normal((2000, 64)), rng.random(2000)
    for m in (noise.ModeNoise(0.05, 0.98), noise.ModeNoise(0.1, 1.0), noise.ModeNoise(0.2, 0.0), noise.ModeNoise(0.0, 0.9)):
        z = np.empty_like(e)
        z[0] = e[0]
        for t in range(1, len(e)):  # the manifest's `update`, as Swift would write it
            z[t] = e[t] if u[t] < m.jump else m.rho * z[t - 1] + np.sqrt(1 - m.rho ** 2) * e[t]
        assert np.allclose(noise.held(e, u, m), z, atol=1e-12), m


def test_rho_zero_is_fresh_noise_every_frame():
    assert np.array_equal(NoiseProcess.same().sample(50, seed=1, mode=4), np.random.default_rng(1).standard_normal((50, 64)).astype(np.float32))


def test_each_track_gets_its_own_sequence_of_its_own_mode_from_a_fresh_start():
    track, modes = np.repeat([0, 1], 500), np.repeat([0, 3], 500)
    process = NoiseProcess((noise.ModeNoise(0.0, 0.99), noise.FRESH, noise.FRESH, noise.ModeNoise(0.0, 0.5), noise.FRESH), dim=4096)
    z = process.for_tracks(_arrays(track, modes), seed=0)
    assert np.mean(z[498] * z[499]) > 0.9 and abs(np.mean(z[998] * z[999]) - 0.5) < 0.1
    assert abs(np.mean(z[499] * z[500])) < 0.1  # the last frame of one track, the first of the next


def test_a_model_without_a_recorded_process_draws_fresh_noise_an_ar1_one_its_rho_and_an_unknown_one_is_refused():
    assert NoiseProcess.from_dict(None) == NoiseProcess.same()
    assert NoiseProcess.from_dict({"kind": "ar1", "rho": 0.92, "dim": 64, "rate_hz": 30.0}) == NoiseProcess.same(rho=0.92)  # earlier models
    per_mode = NoiseProcess(tuple(noise.ModeNoise(0.02 * i, 0.9 + 0.02 * i, 1.0 - 0.1 * i, 0.5 * i) for i in range(5)))
    assert NoiseProcess.from_dict(per_mode.as_dict()) == per_mode
    before_the_offset = per_mode.as_dict()
    for m in before_the_offset["modes"].values():
        del m["level_offset_db"]
    assert {m.level_offset for m in NoiseProcess.from_dict(before_the_offset).modes} == {0.0}  # glided as then
    before_the_glide = before_the_offset
    for m in before_the_glide["modes"].values():
        del m["level_ema"]
    assert {m.level_ema for m in NoiseProcess.from_dict(before_the_glide).modes} == {1.0}  # played as generated
    with pytest.raises(ValueError, match="unknown noise process 'pink'"):
        NoiseProcess.from_dict({"kind": "pink", "rho": 0.5})
    partial = per_mode.as_dict()
    del partial["modes"]["aurora_veil"]
    with pytest.raises(ValueError, match="aurora_veil"):
        NoiseProcess.from_dict(partial)


def test_fit_recovers_each_modes_own_process_from_music_that_moves_like_it():
    """A generator that passes its noise through: each mode's fitted process is its music's own; a mode without tracks draws fresh noise."""
    track, modes = np.repeat(np.arange(8), 900), np.repeat([0, 0, 0, 0, 2, 2, 2, 2], 900)
    arrays = _arrays(track, modes)
    truth = NoiseProcess((noise.ModeNoise(0.05, 1.0), noise.FRESH, noise.ModeNoise(0.0, 0.8), noise.FRESH, noise.FRESH))
    arrays["latent"] = truth.for_tracks(arrays, seed=7) * 6 - 40
    lines = []
    process, scan = noise.fit(lambda rows: lambda z: z * 6 - 40, arrays, windows=8, log=lines.append)
    assert [(m.jump, m.rho) for m in process.modes] == [(m.jump, m.rho) for m in truth.modes]
    points = len({(r["jump"], r["rho"]) for r in scan if "rho" in r})
    assert [line.split(":")[0] for line in lines] == [f"noise fit {i}/{points}" for i in range(1, points + 1)]  # progress, in grid order
    assert process.modes[2].level_ema == 1.0 and process.modes[0].level_ema >= 0.7  # no glide the music lacks (0.7 and 1 tie)
    assert {r["mode"] for r in scan} == {"sky_garden", "radiant_underground_chamber"}
    fresh = next(r for r in scan if r["mode"] == "sky_garden" and r["jump"] == 0 and r["rho"] == 0)
    assert fresh["change_ratio"] > 3  # fresh noise would flicker


def test_the_fit_recovers_the_process_from_any_of_its_draws_on_the_profiles_windows():
    """A generator's bands follow a few noise directions, so one window's figures are noisy: on 8 windows the choice
    for the mode that jumps and drifts changed with the fit's own draws (2 of 6 missed); the profile's windows hold it."""
    track, modes = np.repeat(np.arange(8), 5400), np.repeat([0, 0, 0, 0, 2, 2, 2, 2], 5400)
    arrays = _arrays(track, modes)
    truth = NoiseProcess((noise.ModeNoise(0.05, 1.0), noise.FRESH, noise.ModeNoise(0.1, 0.9), noise.FRESH, noise.FRESH))
    directions = np.random.default_rng(1).standard_normal((4, 64))

    def generate(z):
        return 3 * z[:, :4] @ directions + 0.5 * z - 40

    arrays["latent"] = generate(truth.for_tracks(arrays, seed=7))
    windows = get_profile("demo").noise_fit_windows
    for seed in range(6):
        process, _ = noise.fit(lambda rows: generate, arrays, windows, seed=seed)
        assert [(m.jump, m.rho) for m in process.modes[::2]] == [(0.05, 1.0), (0.1, 0.9), (0.0, 0.0)], f"draw {seed}"


def test_the_fit_never_picks_a_process_that_collapses_the_spread_while_another_keeps_it():
    def row(mismatch, spread):
        return {"mismatch": mismatch, "spread_ratio": spread}
    assert noise._choose([row(0.1, 0.5), row(0.3, 0.85), row(0.2, 0.79)]) == row(0.3, 0.85)
    assert noise._choose([row(0.1, 0.5), row(0.3, 0.7)]) == row(0.3, 0.7)  # none keeps it: the widest


def test_figures_over_time_see_flicker_that_per_frame_figures_cannot():
    rng = np.random.default_rng(0)
    real = NoiseProcess.same(rho=0.95).sample(3000, seed=1, mode=0).reshape(10, 300, 64)
    shuffled = real.reshape(-1, 64)[rng.permutation(3000)].reshape(10, 300, 64)  # the same frames, in another order
    same = temporal.compare(real, real)
    assert same["change_ratio"] == 1.0 and same["lag1"] == same["lag1_real"]
    flicker = temporal.compare(shuffled, real)
    assert flicker["change_ratio"] > 3 and flicker["lag1"] < 0.1 < 0.9 < flicker["lag1_real"]


def test_the_lag1_gaps_interval_holds_it_and_says_how_closely_the_windows_read_it():
    """Windows alike read the gap closely, closer with more of them; windows that differ as music's do read it loosely."""
    def windows(rho: float, count: int, seed: int) -> np.ndarray:
        return NoiseProcess.same(rho=rho).sample(300 * count, seed=seed, mode=0).reshape(count, 300, 64)

    def read(fake: np.ndarray, real: np.ndarray) -> tuple[float, float, float]:
        figures = temporal.compare(fake, real)
        return figures["lag1"] - figures["lag1_real"], *temporal.lag1_gap_interval(fake, real)

    gap, lo, hi = read(windows(0.9, 10, 1), windows(0.8, 10, 2))
    assert 0 < lo <= gap <= hi
    _, lo_more, hi_more = read(windows(0.9, 160, 1), windows(0.8, 160, 2))
    assert hi_more - lo_more < 0.5 * (hi - lo)
    varied = lambda seed: np.concatenate([windows(0.95, 5, seed), windows(0.5, 5, seed + 1)])  # noqa: E731
    gap, lo_varied, hi_varied = read(varied(3), varied(5)[::-1])  # the same music, windows paired with unlike ones
    assert lo_varied < gap < hi_varied and hi_varied - lo_varied > 5 * (hi - lo)


def test_the_level_sees_loud_bands_moving_together_where_each_band_looks_like_the_music():
    rng = np.random.default_rng(0)
    loud = np.linspace(-60, -10, 64)  # dB per band: the top bands hold most of the power
    real = loud + rng.standard_normal((10, 300, 64))  # every band wobbles on its own
    together = loud + rng.standard_normal((10, 300, 1))  # every band up and down at once
    assert temporal.compare(together, real)["change_ratio"] == pytest.approx(1.0, abs=0.05)
    assert temporal.level_change_ratio(real, real) == 1.0
    assert temporal.level_change_ratio(together, real) > 1.5
    assert temporal.level(np.full(64, -30.0)) == pytest.approx(-30 + 10 * np.log10(64))


class _Frames:
    """A shipped path whose frames are the body's own first dims (the music below is made the same way), plus noise
    (`flicker`, every band on its own; `together`, dB on every band at once), and a SAN that reads the first 16 bands."""

    def __init__(self, flicker: float, san_flicker: float = 0.0, together: float = 0.0, louder: float = 0.0):
        self.flicker, self.san_flicker, self.together, self.louder = flicker, san_flicker, together, louder

    def latents(self, conditioning, noise):
        body = conditioning[:, contract.DYNAMICS_SLICE]
        return body[:, :64] * 6 - 40 + 6 * self.flicker * noise + self.together * noise[:, :1] + self.louder

    def controls_of(self, latent, conditioning):
        """Exact on the real music, plus a flicker of its own."""
        own = np.random.default_rng(0).standard_normal((len(latent), 16))
        return (latent[:, :16] + 40) / 6 + self.san_flicker * own


def test_over_time_detail_reads_each_mode_and_the_controls_san_makes():
    """A path that reproduces the music and its controls moves as they do, in every mode and control; one that flickers does not."""
    track, modes = np.repeat([0, 1], 900), np.repeat([0, 3], 900)
    cond = np.zeros((1800, contract.CONDITIONING_DIM), np.float32)
    cond[np.arange(1800), contract.MODE_SLICE.start + modes] = 1.0
    cond[:, contract.DYNAMICS_SLICE] = NoiseProcess.same(rho=0.95, dim=contract.DYNAMICS_DIM).for_tracks({"track": track, "conditioning": cond}, seed=1)
    body = cond[:, contract.DYNAMICS_SLICE]
    val = {"t": np.tile(np.arange(900) / 30.0, 2), "track": track, "conditioning": cond,
           "latent": body[:, :64] * 6 - 40, "controls": body[:, :16]}
    exact = measure.over_time_detail(_Frames(0.0), NoiseProcess.same(), val, 4)
    controls = {"controls", "loudness_db", "onset_strength"}
    from_music = {name + measure.SAN_ON_REAL_MUSIC for name in controls}
    assert set(exact) == {"sky_garden", "iridescent_beauty", *controls, *from_music}
    for row in exact.values():
        assert row["change_ratio"] == pytest.approx(1.0) and row["lag1"] == pytest.approx(row["lag1_real"]) and row["windows"] > 0

    def flickers(row):
        return row["change_ratio"] > 2 and row["lag1"] < row["lag1_real"] - 0.2

    frames_flicker = measure.over_time_detail(_Frames(3.0), NoiseProcess.same(), val, 4)
    assert all(flickers(row) for name, row in frames_flicker.items() if name not in from_music)
    assert all(frames_flicker[name]["change_ratio"] == pytest.approx(1.0) for name in from_music)  # SAN is not to blame
    san_flicker = measure.over_time_detail(_Frames(0.0, san_flicker=3.0), NoiseProcess.same(), val, 4)
    assert all(flickers(san_flicker[name]) for name in from_music)
    for mode in ("sky_garden", "iridescent_beauty"):  # which mode's loudness flickers, and whose fault
        assert exact[mode]["san_loudness_change_ratio"] == pytest.approx(1.0)
        assert frames_flicker[mode]["san_loudness_change_ratio"] > 2 and san_flicker[mode]["san_loudness_change_ratio"] > 2
        assert frames_flicker[mode]["san_loudness_change_ratio_on_music"] == pytest.approx(1.0)  # SAN is not to blame
        assert san_flicker[mode]["san_loudness_change_ratio_on_music"] > 2  # SAN flickers on the real music too
        assert san_flicker[mode]["level_change_ratio"] == pytest.approx(1.0)
    quieter = measure.over_time_detail(_Frames(0.0, louder=-6.0), NoiseProcess.same(), val, 4)
    for mode in ("sky_garden", "iridescent_beauty"):  # which mode plays too quiet
        assert exact[mode]["level_vs_music_db"] == pytest.approx(0.0) and quieter[mode]["level_vs_music_db"] == pytest.approx(-6.0, abs=1e-3)
        assert quieter[mode]["level_change_ratio"] == pytest.approx(1.0)
    silent = measure.over_time_detail(_Frames(0.0, louder=-20.0), NoiseProcess.same(), val, 4)
    for mode in ("sky_garden", "iridescent_beauty"):  # 20 dB below the music all through: one gap per 10-s window
        assert exact[mode]["gaps_per_min"] == exact[mode]["gaps_per_min_real"] == quieter[mode]["gaps_per_min"] == silent[mode]["gaps_per_min_real"]
        assert silent[mode]["gaps_per_min"] == pytest.approx(60 / measure.OVER_TIME_SECONDS)
    row = next(line for line in evaluate.over_time_detail_section(silent).splitlines() if line.startswith("| sky_garden |"))
    sky = silent["sky_garden"]
    assert row.endswith(f"| {sky['level_change_ratio']:.2f} | {sky['san_loudness_change_ratio']:.2f} (1.00) | -20.0 | 6.0 ({sky['gaps_per_min_real']:.1f}) |")


def test_gaps_are_runs_long_and_deep_enough_to_hear_as_the_music_stopping():
    loud = np.zeros((2, 300, 64))  # two 10-s windows at 30 Hz, every band at 0 dB
    music_db = float(temporal.level(loud[0, 0]))
    x = loud.copy()
    x[0, 10:25] -= 13  # 0.5 s, 13 dB below: a gap
    x[0, 100:114] -= 13  # 14 frames: a dip between notes
    x[0, 200:260] -= 11  # 2 s, but only 11 dB below
    x[1, 280:] -= 30  # to the window's end: a gap
    x[1, :40] -= 30  # from its start: another
    assert temporal.gaps_per_minute(x, music_db) == pytest.approx(3 / (20 / 60))
    assert temporal.gaps_per_minute(loud, music_db) == 0.0
    assert temporal.gaps_per_minute(x, music_db, rate_hz=60.0) == pytest.approx(1 / (10 / 60))  # half a second is 30 frames there


def _body_music(modes: list[int]) -> dict[str, np.ndarray]:
    """Tracks of 30 s whose music (and controls) are the body's first dims, as `_Frames` makes them."""
    track, mode = np.repeat(np.arange(len(modes)), 900), np.repeat(modes, 900)
    cond = np.zeros((len(track), contract.CONDITIONING_DIM), np.float32)
    cond[np.arange(len(track)), contract.MODE_SLICE.start + mode] = 1.0
    cond[:, contract.DYNAMICS_SLICE] = NoiseProcess.same(rho=0.95, dim=contract.DYNAMICS_DIM).for_tracks({"track": track, "conditioning": cond}, seed=1)
    body = cond[:, contract.DYNAMICS_SLICE]
    return {"t": np.tile(np.arange(900) / 30.0, len(modes)), "track": track, "conditioning": cond,
            "latent": body[:, :64] * 6 - 40, "controls": body[:, :16]}


def test_the_glide_moves_every_band_alike_and_its_level_follows_the_apps_per_frame_rule():
    rng = np.random.default_rng(0)
    x = (np.linspace(-60, -10, 64) + 4 * rng.standard_normal((3, 200, 64))).astype(np.float32)
    assert temporal.smooth_level(x, 1.0) is x
    glided = temporal.smooth_level(x, 0.3)
    assert glided.dtype == np.float32 and np.allclose((glided - x).std(-1), 0, atol=1e-4)  # the spectrum's shape is kept
    level, s = temporal.level(x), np.empty((3, 200))
    s[:, 0] = level[:, 0]
    for t in range(1, 200):  # the manifest's `level_smoothing`, as Swift would write it
        s[:, t] = 0.3 * level[:, t] + 0.7 * s[:, t - 1]
    assert np.allclose(temporal.level(glided), s, atol=1e-3)
    assert temporal.level_change_ratio(glided, x) < 0.5


def test_the_fit_glides_the_level_of_a_mode_whose_frames_jump_louder_than_its_music():
    """Every band jumping together with the noise: the mode whose music glides gets a level EMA, the other none."""
    track, modes = np.repeat(np.arange(8), 900), np.repeat([0, 0, 0, 0, 2, 2, 2, 2], 900)
    arrays = _arrays(track, modes)
    truth = NoiseProcess((noise.ModeNoise(0.1, 1.0), noise.FRESH, noise.ModeNoise(0.1, 1.0), noise.FRESH, noise.FRESH))

    def generate(z):
        return z * 2 - 40 + 8 * z[:, :1]

    music = generate(truth.for_tracks(arrays, seed=7))
    glided = NoiseProcess((noise.ModeNoise(0.1, 1.0, 0.3), *truth.modes[1:]))
    arrays["latent"] = np.concatenate([glided.smooth(music[track == k], modes[track == k][0]) for k in range(8)])
    process, scan = noise.fit(lambda rows: generate, arrays, windows=8)
    assert process.modes[0].level_ema < 1.0 and process.modes[2].level_ema == 1.0
    shipped = {r["mode"]: r for r in scan if r.get("shipped")}
    unglided = next(r for r in scan if r["mode"] == "sky_garden" and r.get("level_ema") == 1.0)
    assert unglided["level_change_ratio"] > 1.5 > 1.3 > shipped["sky_garden"]["level_change_ratio"]  # the jumps' level, then glided


@pytest.mark.parametrize("music_ema", [0.5, 0.3, 0.1])
def test_the_glide_chosen_matches_a_music_whose_level_moves_as_slowly_as_a_pads(music_ema):
    """Frames whose level jumps with the noise, against music that is the same frames glided: the fit's glide
    brings the level's change to the music's, down to a third of a second's glide (Sky Garden on real music)."""
    jumps = NoiseProcess.same(jump=0.1, rho=1.0).sample(8 * 300, seed=3, mode=0).reshape(8, 300, -1)
    frames = np.linspace(-60, -10, 64) + 2 * jumps + 8 * jumps[..., :1]
    rows = noise._glide("sky_garden", frames, temporal.smooth_level(frames, music_ema))
    shipped = next(r for r in rows if r["shipped"])
    assert shipped["level_ema"] == music_ema and shipped["level_change_ratio"] == pytest.approx(1.0)


def test_the_glide_never_holds_the_bands_longer_than_the_music_while_a_lighter_one_is_left():
    """Frames whose spectrum is held between jumps and whose level flickers, against music whose bands move every
    frame under a gliding level: the glide matching the level's pace holds the bands 0.07 longer than the music,
    so a lighter one ships (on real music the percussive modes glided to +0.06 - 0.10 on training windows)."""
    rng, spectrum = np.random.default_rng(5), np.linspace(-60, -10, 64)
    held = NoiseProcess.same(jump=0.1, rho=1.0).sample(8 * 300, seed=3, mode=0).reshape(8, 300, -1)
    moving = NoiseProcess.same(rho=0.7).sample(8 * 300, seed=4, mode=0).reshape(8, 300, -1)
    frames = (spectrum + 2 * held + 6 * rng.standard_normal((8, 300, 1))).astype(np.float32)
    music = temporal.smooth_level((spectrum + 2 * moving + 6 * rng.standard_normal((8, 300, 1))).astype(np.float32), 0.3)
    rows = noise._glide("sky_garden", frames, music)
    shipped, least = next(r for r in rows if r["shipped"]), min(rows, key=lambda r: r["mismatch"])
    assert least["lag1"] - least["lag1_real"] > noise.GLIDE_LAG1_SLACK + 0.03  # the level's best glide: ruled out
    assert shipped["lag1"] - shipped["lag1_real"] <= noise.GLIDE_LAG1_SLACK and shipped["level_ema"] > least["level_ema"]
    assert shipped is min((r for r in rows if r["lag1"] - r["lag1_real"] <= noise.GLIDE_LAG1_SLACK), key=lambda r: r["mismatch"])
    flicker = (spectrum + 2 * rng.standard_normal((8, 300, 64))).astype(np.float32)  # bands new every frame
    every_glide_over = noise._glide("sky_garden", frames, flicker)
    assert min(r["lag1"] - r["lag1_real"] for r in every_glide_over) > noise.GLIDE_LAG1_SLACK
    assert next(r for r in every_glide_over if r["shipped"]) is min(every_glide_over, key=lambda r: r["lag1"] - r["lag1_real"])


def test_the_glide_keeps_the_typical_loudness_of_frames_whose_level_dips_deep():
    """A pad's level dips deep between notes. An EMA of the level in dB follows its mean, below its median, so the
    glide played Sky Garden 5 dB quieter than the generator made it on real music; the fitted offset gives it back."""
    jumps = NoiseProcess.same(jump=0.1, rho=1.0).sample(8 * 300, seed=3, mode=0).reshape(8, 300, -1)
    dips = np.where(jumps[..., 1:2] > 0.8, -60.0, 0.0)  # one held draw in five goes near-silent
    frames = (np.linspace(-60, -10, 64) + 2 * jumps + 3 * jumps[..., :1] + dips).astype(np.float32)
    rows = noise._glide("sky_garden", frames, temporal.smooth_level(frames, 0.1))
    shipped = next(r for r in rows if r["shipped"])
    assert shipped["level_ema"] == 0.1
    median = np.median(temporal.level(frames))
    assert np.median(temporal.level(temporal.smooth_level(frames, 0.1))) < median - 2  # the bias the offset undoes
    process = NoiseProcess((noise.ModeNoise(0.1, 1.0, shipped["level_ema"], shipped["level_offset"]), *NoiseProcess.same().modes[1:]))
    played = process.smooth(frames, 0)
    assert abs(np.median(temporal.level(played)) - median) < 0.01 and shipped["level_offset"] > 2
    assert temporal.level_change_ratio(played, frames) == pytest.approx(temporal.level_change_ratio(temporal.smooth_level(frames, 0.1), frames))
    assert next(r for r in rows if r["level_ema"] == 1.0)["level_offset"] == 0.0


def test_gate_3s_frames_and_san_controls_are_played_with_each_modes_glide():
    val = _body_music([0, 3])
    jumping = NoiseProcess.same(jump=0.2, rho=1.0)
    glided = NoiseProcess((noise.ModeNoise(0.2, 1.0, 0.3), *jumping.modes[1:]))  # sky garden only
    before, after = (measure.over_time_detail(_Frames(0.0, together=12.0), p, val, 4) for p in (jumping, glided))
    assert after["sky_garden"]["level_change_ratio"] < 0.6 * before["sky_garden"]["level_change_ratio"]
    assert after["iridescent_beauty"] == before["iridescent_beauty"]
    assert after["loudness_db"]["change_ratio"] < before["loudness_db"]["change_ratio"]  # SAN hears the glided frames
    assert after["sky_garden"]["san_loudness_change_ratio"] < before["sky_garden"]["san_loudness_change_ratio"]


def _music(modes: list[int], seed: int, shift: dict[int, float]) -> dict[str, np.ndarray]:
    """Tracks of 60 s, one per entry of `modes`, whose music moves as an AR(1) process (plus `shift` dB in the modes named)."""
    n = 1800
    track, mode = np.repeat(np.arange(len(modes)), n), np.repeat(modes, n)
    cond = np.zeros((len(track), contract.CONDITIONING_DIM), np.float32)
    cond[np.arange(len(track)), contract.MODE_SLICE.start + mode] = 1.0
    latent = NoiseProcess.same(rho=0.5).for_tracks({"track": track, "conditioning": cond}, seed=seed) * 6 - 40
    latent += np.array([shift.get(int(m), 0.0) for m in mode], np.float32)[:, None]
    return {"t": np.tile(np.arange(n) / 30.0, len(modes)), "track": track, "conditioning": cond, "latent": latent}


UNIT_STATS = (np.full(64, -40.0, np.float32), np.full(64, 6.0, np.float32))  # what `_music` normalises by


def _axes(val: dict[str, np.ndarray]) -> np.ndarray:
    return measure.principal_axes((val["latent"] - UNIT_STATS[0]) / UNIT_STATS[1], 8)


def test_over_time_reads_what_replaying_the_training_music_would_score():
    """Training music like the validation music sits near the real-vs-real floor; one mode's training music 12 dB
    away (a validation track unlike any training track) puts it far above, in every sampler's row too."""
    val = _music([0, 1, 0, 1], seed=1, shift={})
    like = measure.over_time({}, _music([1, 0, 1, 0], seed=2, shift={}), val, UNIT_STATS, _axes(val), per_track=4)
    unlike = measure.over_time({}, _music([1, 0, 1, 0], seed=2, shift={1: 12.0}), val, UNIT_STATS, _axes(val), per_track=4)
    floor = like["real vs real"]["frame_fd"]
    assert like["training music"]["frame_fd"] < 2 * floor < 10 * floor < unlike["training music"]["frame_fd"]
    assert unlike["training music"]["sequence_fd"] > 10 * like["training music"]["sequence_fd"]
    assert unlike["real vs real"]["frame_fd_training"] == unlike["training music"]["frame_fd"]
    assert like["training music"]["windows"] == like["real vs real"]["windows"] == 16


def test_training_windows_match_each_validation_windows_mode():
    train, val = _music([3, 0, 0], seed=2, shift={}), _music([0, 3, 4], seed=1, shift={})
    long = measure._long_windows(val, 2, 30.0)
    replay = measure.training_windows(train, val, long, 2)
    assert list(contract.modes_of(train["conditioning"][replay[:, 0]])) == [0, 0, 3, 3]  # mode 4 has no training music: left out
    assert replay.shape[1] == long.shape[1] and len(np.unique(replay[:, 0])) == 4


def test_over_time_without_a_training_window_that_long_reads_the_rest():
    """Training tracks shorter than a window (tiny sets): no `training music` row, the reference is NaN, the rest is read."""
    val, short = _music([0, 1, 0, 1], seed=1, shift={}), _music([1, 0], seed=2, shift={})
    short = {k: v[np.r_[0:200, 1800:2000]] for k, v in short.items()}  # two tracks of 6.7 s
    rows = measure.over_time({}, short, val, UNIT_STATS, _axes(val), per_track=4)
    assert set(rows) == {"real vs real"} and np.isnan(rows["real vs real"]["frame_fd_training"])
    assert rows["real vs real"]["frame_fd"] > 0


def test_each_window_is_played_after_the_frames_of_its_track_before_it_as_mid_session():
    n = measure.RUN_IN
    assert (1 - min(noise.LEVEL_EMA_GRID)) ** n < measure.SETTLED  # even the slowest glide has settled when a window starts
    track = np.repeat([0, 1], 200)
    ran = measure.with_run_in(np.array([[150, 151], [205, 206], [200, 201]]), track)
    assert ran.shape == (3, n + 2)
    assert list(ran[0]) == list(range(150 - n, 152))  # RUN_IN frames before, then the window
    assert list(ran[1]) == [200] * (n - 5) + list(range(200, 207))  # its track starts 5 frames before: its first frame, held
    assert set(ran[2][:n]) == {200}  # a window at a track's start never reads the track before


def test_over_time_reads_the_noise_draw_it_is_asked_for():
    """The gate reads draw 0; a benchmark averages draws (gate 3's lag-1 moves by about 0.01 between them)."""
    from lume_v6_dagster.dataset import Stats
    from lume_v6_dagster.models.flow import OneStepGenerator
    from lume_v6_dagster.training.flow_training import build_models

    stats = Stats([0.0] * contract.DYNAMICS_DIM, [1.0] * contract.DYNAMICS_DIM, list(UNIT_STATS[0]), list(UNIT_STATS[1]),
                  [0.0] * 16, [1.0] * 16, n=1)
    enc, flow = build_models(contract.CONDITIONING_DIM, stats, seed=0)
    sampler = {"v6": (enc.eval(), OneStepGenerator(flow.eval()), NoiseProcess.same(jump=0.1, rho=1.0), 1)}
    train, val = _music([0, 3, 0, 3], seed=1, shift={}), _music([0, 3, 0, 3], seed=2, shift={})
    first, again, second = (measure.over_time(sampler, train, val, UNIT_STATS, _axes(val), 4, **kw) for kw in ({}, {"seed": 0}, {"seed": 1}))
    for name in first:  # the references' rows hold NaN (no bootstrap interval)
        assert first[name] == pytest.approx(again[name], nan_ok=True)
    assert first["real vs real"] == pytest.approx(second["real vs real"], nan_ok=True) and first["v6"]["windows"] == second["v6"]["windows"]
    assert first["v6"]["lag1"] != second["v6"]["lag1"] and first["v6"]["frame_fd"] != second["v6"]["frame_fd"]
    assert first["v6"]["lag1_gap_lo"] <= first["v6"]["lag1"] - first["v6"]["lag1_real"] <= first["v6"]["lag1_gap_hi"]
    assert np.isnan(first["real vs real"]["lag1_gap_lo"])  # the references are read as the floor, not with an interval
