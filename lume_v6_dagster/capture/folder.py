"""A capture folder as a whole: completeness, fingerprints, validation and loading."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from lume_v6_dagster import contract
from lume_v6_dagster.capture import arrays as arrays_mod
from lume_v6_dagster.capture import audio, schemas, session
from lume_v6_dagster.capture.arrays import Arrays
from lume_v6_dagster.capture.session import Session
from lume_v6_dagster.capture.violations import CaptureError, Violation
from lume_v6_dagster.checksums import sha256_file


@dataclass
class Capture:
    path: Path
    session: Session
    arrays: Arrays
    audio_rate: int
    audio_seconds: float

    @property
    def track_id(self) -> str:
        return self.session.track_id


@dataclass(frozen=True)
class FolderState:
    complete: bool
    reason: str  # why not complete, or "complete"
    fingerprint: str  # sizes and mtimes of the contract files: changes whenever their content does
    newest_mtime: float


def file_stats(folder: Path) -> dict[str, list[int]]:
    """[size, mtime_ns] of each contract file present: the cheap part of a capture's identity.

    A capture is its three contract files; anything else in the folder (Finder's .DS_Store,
    AppleDouble ._* files) is not part of it and never counts.
    """
    out = {}
    for name in contract.CAPTURE_FILES:
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(Path(folder) / name)
            out[name] = [st.st_size, st.st_mtime_ns]
    return out


def fingerprint(record: dict) -> str:
    """Short, stable hash of a record (file stats, checksums): the sensor's run keys, data versions."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def folder_state(folder: Path, now: float, settle_seconds: float) -> FolderState:
    """Complete = every file present, `session_end` logged, nothing changed for `settle_seconds`."""
    stats = file_stats(folder)
    key = fingerprint(stats)
    newest = max((mtime_ns / 1e9 for _, mtime_ns in stats.values()), default=0.0)
    missing = [f for f in contract.CAPTURE_FILES if f not in stats]
    if missing:
        return FolderState(False, f"missing {', '.join(missing)}", key, newest)
    if not session.has_session_end(folder / session.FILE):
        return FolderState(False, "no session_end yet", key, newest)
    if now - newest < settle_seconds:
        return FolderState(False, f"changed {now - newest:.0f} s ago (settle {settle_seconds:.0f} s)", key, newest)
    return FolderState(True, "complete", key, newest)


def sha256_files(folder: Path) -> dict[str, str]:
    """Content checksums of the contract files, streamed."""
    return {name: sha256_file(folder / name) for name in contract.CAPTURE_FILES}


def changed_files(folder: Path, stats: dict, sha256: dict[str, str]) -> list[str]:
    """Contract files whose content differs from a record: stats first, sha256 only where they moved.

    A `touch` or a backup tool moves an mtime without changing content: that is not a change.
    """
    now = file_stats(folder)
    return [n for n in contract.CAPTURE_FILES
            if now.get(n) != stats.get(n) and (n not in now or sha256_file(Path(folder) / n) != sha256.get(n))]


def _check_name(folder: Path, out: list[Violation]) -> None:
    if not contract.TRACK_ID_RE.match(folder.name):
        out.append(Violation(folder.name, "folder name", f"not a valid track id ({contract.TRACK_ID_RE.pattern})"))


def _check_end(sess: Session, arr: Arrays, out: list[Violation]) -> None:
    n = len(arr.t)
    if n and arr.t[-1] > sess.end_t + 1.0:
        out.append(Violation(arrays_mod.FILE, f"array 't', row {n - 1}", f"t={arr.t[-1]:.3f} is after the session end t={sess.end_t:.3f}"))


def read_capture(folder: Path) -> tuple[Capture | None, list[Violation]]:
    """Structural checks (files, log, array headers, audio) and the loaded capture if they pass."""
    folder = Path(folder)
    out: list[Violation] = []
    _check_name(folder, out)
    for name in contract.CAPTURE_FILES:
        p = folder / name
        if not p.is_file():
            out.append(Violation(name, "file", "missing"))
        elif p.stat().st_size == 0:
            out.append(Violation(name, "file", "empty"))
    if out:
        return None, out
    arr = arrays_mod.load_arrays(folder / arrays_mod.FILE, out)
    sess = session.parse_session(folder / session.FILE, folder.name, out, len(arr.t) if arr else None)
    info = audio.check_audio(folder / audio.FILE, sess.end_t if sess else None, out)
    if sess and arr:
        _check_end(sess, arr, out)
    if out or not (sess and arr and info):
        return None, out
    return Capture(folder, sess, arr, info.samplerate, info.duration), out


def schema_violations(cap: Capture) -> list[Violation]:
    """Value checks on the arrays (pandera): finite, in range, increasing t, confidence in [0, 1]."""
    a = cap.arrays
    return schemas.violations(schemas.CAPTURE_SCHEMA, schemas.capture_frame(a.t, a.confidence, a.dynamics), arrays_mod.FILE)


def validate_capture(folder: Path) -> list[Violation]:
    """Every violation of the capture contract in one folder (empty list = valid)."""
    cap, out = read_capture(folder)
    return out if cap is None else schema_violations(cap)


def load_capture(folder: Path) -> Capture:
    """The capture, or CaptureError listing every violation."""
    cap, out = read_capture(folder)
    if cap is not None:
        out = schema_violations(cap)
    if out:
        raise CaptureError(str(folder), out)
    return cap
