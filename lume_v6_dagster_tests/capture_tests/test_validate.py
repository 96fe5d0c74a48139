"""The validator names file, place and rule for every broken folder, and never writes."""

import numpy as np
import pytest
import soundfile as sf

from lume_v6_dagster.capture.folder import load_capture, validate_capture
from lume_v6_dagster.capture.violations import CaptureError
from lume_v6_dagster_tests.conftest import read_events, rewrite_npz, write_events


def _only(violations, file, *words):
    text = [str(v) for v in violations]
    assert any(v.file == file and all(w in str(v) for w in words) for v in violations), text


def test_simulated_captures_are_valid(sim_root):
    for folder in sorted(p for p in sim_root.iterdir() if p.is_dir()):
        assert validate_capture(folder) == [], folder


def test_missing_file(track):
    (track / "audio.wav").unlink()
    _only(validate_capture(track), "audio.wav", "missing")


def test_v5_era_64d_dynamics(track):
    with np.load(track / "dynamics.npz") as z:
        rewrite_npz(track, dynamics=z["dynamics"][:, :64])
    _only(validate_capture(track), "dynamics.npz", "(1800, 64)", "V5 era")


def test_nan_names_column_and_row(track):
    with np.load(track / "dynamics.npz") as z:
        d = z["dynamics"].copy()
    d[17, 70] = np.nan  # energy block, dim 6
    rewrite_npz(track, dynamics=d)
    _only(validate_capture(track), "dynamics.npz", "energy_06", "rows 17", "not_nullable")


def test_non_increasing_t(track):
    with np.load(track / "dynamics.npz") as z:
        t = z["t"].copy()
    t[40] = t[39]
    rewrite_npz(track, t=t)
    _only(validate_capture(track), "dynamics.npz", "column t", "rows 40", "strictly_increasing")


def test_frame_count_mismatch(track):
    events = read_events(track)
    events[-1]["frames"] += 3
    write_events(track, events)
    _only(validate_capture(track), "session.jsonl", "session_end", "frames=")


def test_unknown_mode(track):
    events = read_events(track)
    events[0]["mode"] = "disco_inferno"
    write_events(track, events)
    _only(validate_capture(track), "session.jsonl", "line 1", "unknown")


def test_reserved_mode(track):
    events = read_events(track)
    events[0]["mode"] = 6
    write_events(track, events)
    _only(validate_capture(track), "session.jsonl", "line 1", "reserved")


def test_truncated_log(track):
    lines = (track / "session.jsonl").read_text().splitlines()
    (track / "session.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    _only(validate_capture(track), "session.jsonl", "session_end")


def test_confidence_out_of_range(track):
    with np.load(track / "dynamics.npz") as z:
        c = z["confidence"].copy()
    c[5] = 1.5
    rewrite_npz(track, confidence=c)
    _only(validate_capture(track), "dynamics.npz", "column confidence", "rows 5")


def test_low_rate_audio(track):
    y, _ = sf.read(track / "audio.wav")
    sf.write(track / "audio.wav", y[::3], 8000)
    _only(validate_capture(track), "audio.wav", "8000 Hz")


def test_load_capture_raises_with_every_violation(track):
    events = read_events(track)
    events[0]["mode"] = 9
    events[-1]["frames"] = 1
    write_events(track, events)
    with pytest.raises(CaptureError) as err:
        load_capture(track)
    assert len(err.value.violations) >= 2 and str(track) in str(err.value)


def test_validation_never_modifies_raw_files(sim_root):
    folder = sim_root / "s01-sky-garden"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    validate_capture(folder)
    load_capture(folder)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()} == before
