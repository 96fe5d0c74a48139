"""The bad-input corpus: each broken capture is rejected with its file, place and rule.

Every case starts from a valid simulated capture, breaks one thing, and checks the message.
Raw files of the valid tracks are never touched (checked at the end).
"""

import json
import shutil
import zipfile

import numpy as np
import pytest
import soundfile as sf

from lume_v6_dagster.capture.folder import validate_capture
from lume_v6_dagster.capture.violations import CaptureError
from lume_v6_dagster_tests.conftest import read_events, rewrite_npz, write_events


def _npz(folder):
    with np.load(folder / "dynamics.npz") as z:
        return dict(z)


def _events(change):
    def apply(folder):
        events = read_events(folder)
        change(events)
        write_events(folder, events)
    return apply


def _array(name, fn):
    def apply(folder):
        arrays = _npz(folder)
        rewrite_npz(folder, **{name: fn(arrays[name].copy())})
    return apply


def _set(a, index, value):
    a[index] = value
    return a


def _audio(fn):
    def apply(folder):
        y, rate = sf.read(folder / "audio.wav", dtype="float32")
        y, rate = fn(y, rate)
        sf.write(folder / "audio.wav", y, rate)
    return apply


def _append_after_end(events):
    events.insert(-1, {"type": "dropout", "t0": 1.0, "t1": events[-1]["t"] + 5})


CASES = {  # name -> (break, file, words in the message)
    "missing session.jsonl": (lambda f: (f / "session.jsonl").unlink(), "session.jsonl", ["missing"]),
    "missing dynamics.npz": (lambda f: (f / "dynamics.npz").unlink(), "dynamics.npz", ["missing"]),
    "empty session.jsonl": (lambda f: (f / "session.jsonl").write_text(""), "session.jsonl", ["empty"]),
    "empty audio.wav": (lambda f: (f / "audio.wav").write_bytes(b""), "audio.wav", ["empty"]),
    "truncated log": (_events(lambda e: e.pop()), "session.jsonl", ["session_end"]),
    "malformed JSON line": (lambda f: (f / "session.jsonl").write_text((f / "session.jsonl").read_text().replace('"emotion"', '"emotion', 1)), "session.jsonl", ["line 1", "not valid JSON"]),
    "unknown event type": (_events(lambda e: e.insert(1, {"type": "teleport", "t": 1.0})), "session.jsonl", ["line 2", "unknown event type 'teleport'"]),
    "unknown mode": (_events(lambda e: e[0].update(mode="disco")), "session.jsonl", ["line 1", "mode 'disco' is unknown"]),
    "unknown emotion": (_events(lambda e: e[0].update(emotion="bored")), "session.jsonl", ["line 1", "emotion 'bored' is unknown"]),
    "reserved mode id": (_events(lambda e: e[0].update(mode=7)), "session.jsonl", ["line 1", "reserved"]),
    "frames != N": (_events(lambda e: e[-1].update(frames=e[-1]["frames"] - 1)), "session.jsonl", ["session_end", "frames="]),
    "NPZ not a zip": (lambda f: (f / "dynamics.npz").write_bytes(b"not a zip at all"), "dynamics.npz", ["not a readable NPZ"]),
    "NPZ missing confidence": (lambda f: rewrite_npz(f, confidence=None), "dynamics.npz", ["missing array(s) confidence"]),
    "64-D dynamics (V5 era)": (_array("dynamics", lambda a: a[:, :64]), "dynamics.npz", ["array 'dynamics'", "V5 era"]),
    "129-D dynamics": (_array("dynamics", lambda a: np.hstack([a, a[:, :1]])), "dynamics.npz", ["array 'dynamics'", "expected (N, 128)"]),
    "float64 dynamics": (_array("dynamics", lambda a: a.astype(np.float64)), "dynamics.npz", ["dtype float64", "float32"]),
    "int dynamics": (_array("dynamics", lambda a: a.astype(np.int32)), "dynamics.npz", ["dtype int32"]),
    "NaN": (_array("dynamics", lambda a: _set(a, (7, 100), np.nan)), "dynamics.npz", ["spatial_extent_04", "rows 7", "not_nullable"]),
    "Inf": (_array("dynamics", lambda a: _set(a, (9, 3), np.inf)), "dynamics.npz", ["posture_03", "rows 9", "finite"]),
    "far out of range": (_array("dynamics", lambda a: _set(a, (11, 127), 5000.0)), "dynamics.npz", ["temporal_closure_15", "rows 11", "in_range"]),
    "non-increasing t": (_array("t", lambda a: _set(a, 20, a[19] - 0.01)), "dynamics.npz", ["column t", "rows 20", "strictly_increasing"]),
    "duplicated t": (_array("t", lambda a: _set(a, 30, a[29])), "dynamics.npz", ["column t", "rows 30", "strictly_increasing"]),
    "confidence outside [0, 1]": (_array("confidence", lambda a: _set(a, 12, -0.2)), "dynamics.npz", ["column confidence", "rows 12"]),
    "dropout past the end": (_events(_append_after_end), "session.jsonl", ["dropout", "after the session end"]),
    "audio unreadable": (lambda f: (f / "audio.wav").write_bytes(b"RIFF\x00\x00junk" * 10), "audio.wav", ["unreadable audio"]),
    "audio silent": (_audio(lambda y, r: (np.zeros_like(y), r)), "audio.wav", ["silent"]),
    "audio shorter than the session": (_audio(lambda y, r: (y[: len(y) // 2], r)), "audio.wav", ["shorter than the session"]),
    "audio at 8 kHz": (_audio(lambda y, r: (y[::3], 8000)), "audio.wav", ["8000 Hz"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_corpus_case_is_rejected_with_file_place_and_rule(case, track):
    breaker, file, words = CASES[case]
    breaker(track)
    violations = validate_capture(track)
    assert violations, f"{case}: accepted"
    text = [str(v) for v in violations]
    assert any(v.file == file and all(w in str(v) for w in words) for v in violations), (case, text)


def test_invalid_folder_names_are_rejected(sim_root, tmp_path):
    for name in ("Take 1", "S01-SKY-GARDEN", "-leading-dash"):  # upper case: ids are unique case-insensitively
        folder = shutil.copytree(sim_root / "s01-sky-garden", tmp_path / name)
        assert any(v.place == "folder name" for v in validate_capture(folder)), name


def test_absurd_npz_header_is_refused_unread(track):
    path = track / "dynamics.npz"
    with zipfile.ZipFile(path, "w") as zf:  # claims 10^12 frames; the data is not there
        for name, header in (("t", "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"),
                             ("dynamics", "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 128), }"),
                             ("confidence", "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }")):
            padded = header.ljust(118) + "\n"
            zf.writestr(f"{name}.npy", b"\x93NUMPY\x01\x00" + len(padded).to_bytes(2, "little") + padded.encode())
    rules = " ".join(str(v) for v in validate_capture(track))
    assert "exceeds the limit" in rules and "refused unread" in rules


def test_session_shorter_than_one_pair_window(tmp_path):
    from lume_v6_dagster.capture.folder import load_capture
    from lume_v6_dagster.pairs import build_pairs
    from lume_v6_dagster_tests.test_pairs import _capture

    with pytest.raises(CaptureError, match="shorter than one pair window"):
        build_pairs(load_capture(_capture(tmp_path / "short", seconds=0.01, click_at=0.0, emotion_change=(0.0, "open"))))


def test_corpus_never_touches_the_source_captures(sim_root):
    digest = {p: p.read_bytes() for p in sim_root.rglob("*") if p.is_file()}
    for folder in sorted(p for p in sim_root.iterdir() if p.is_dir()):
        validate_capture(folder)
    assert {p: p.read_bytes() for p in sim_root.rglob("*") if p.is_file()} == digest
