"""The development set: real music and motion from pinned packages, as capture folders the pipeline accepts."""

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lume_v6_dagster import contract, devset
from lume_v6_dagster.capture.folder import validate_capture
from lume_v6_dagster.cli import main


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The whole set at 30 s a session (ten sessions, two per mode), through the CLI, as a user builds it."""
    out = tmp_path_factory.mktemp("devset")
    result = CliRunner().invoke(main, ["devset", "--out", str(out), "--seconds", "30", "--build-only"])
    assert result.exit_code == 0, result.output
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_session_is_a_valid_capture_folder(built):
    folders = sorted(p for p in (built / "captures").iterdir() if p.is_dir())
    assert [f.name for f in folders] == [t.track_id for t in devset.plan(2, 30.0)]
    assert {contract.MODES[t.mode] for t in devset.plan(2, 30.0)} == set(contract.MODES)
    for folder in folders:
        assert validate_capture(folder) == [], folder.name


def test_the_manifest_names_every_source_with_its_sha256(built):
    manifest = json.loads((built / "captures" / "manifest.json").read_text())
    assert manifest["sources"]["motion"]["clips"] == devset.CLIP_SHA256
    chorales = [c for track in manifest["tracks"].values() for c in track["chorales"]]
    assert len(chorales) == len(set(chorales)) == 10 * 6, "no chorale is heard in two sessions"
    import music21

    corpus = Path(music21.__file__).parent / "corpus"
    some = next(iter(manifest["tracks"].values()))["chorales"]
    assert all(_sha(corpus / path) == sha for path, sha in some.items())


def test_the_dancer_moves_with_the_emotion(built):
    """The energy block is higher where the session is energetic than where it is still, in every session."""
    for track in devset.plan(2, 30.0):
        with np.load(built / "captures" / track.track_id / "dynamics.npz") as z:
            t, energy = z["t"], z["dynamics"][:, contract.block_slice("energy")].mean(axis=1)
        means = {contract.EMOTIONS[e]: energy[(t >= start + 1) & (t < end)].mean() for start, end, e in devset._segments(track)}
        assert means["energetic"] > means["still"] + 1.0, (track.track_id, means)


def test_a_rebuilt_session_is_the_same_bytes(built, tmp_path):
    track = devset.plan(2, 30.0)[3]
    devset.write_track(track, tmp_path, devset.motion_clips(built / "cache"))
    for name in ("dynamics.npz", "audio.wav", "session.jsonl"):
        assert _sha(tmp_path / track.track_id / name) == _sha(built / "captures" / track.track_id / name), name


def test_a_clip_that_is_not_the_pinned_one_is_refused(built, tmp_path):
    """A package whose motion clip changed is named, with the clip, rather than silently giving another set."""
    original = next((built / "cache").glob("pybullet-*.whl"))
    forged = tmp_path / original.name
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(forged, "w") as dst:
        for member in src.namelist():
            if member.endswith("data/motions/humanoid3d_walk.txt"):
                dst.writestr(member, src.read(member).replace(b"0.", b"0.1", 1))
            elif "data/motions/" in member:
                dst.writestr(member, src.read(member))
    with pytest.raises(RuntimeError, match=r"humanoid3d_walk.txt: sha256 .* differs from the pinned"):
        devset.motion_clips(tmp_path)
