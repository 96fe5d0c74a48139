"""Parse and check `session.jsonl`, the capture's event log."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lume_v6_dagster import contract
from lume_v6_dagster.capture.violations import Violation

FILE = "session.jsonl"
MAX_LOG_BYTES = 64 * 1024 * 1024  # an event log is a few kB; more is not a capture
EVENT_TYPES = ("session_start", "emotion", "dropout", "marker", "session_end")
START_FIELDS = ("schema", "track_id", "mode", "emotion", "fps", "device", "started_at")


@dataclass
class Session:
    track_id: str
    mode: int
    emotion: int
    fps: float
    device: str
    started_at: str
    end_t: float
    frames: int
    emotion_changes: list[tuple[float, int]] = field(default_factory=list)
    dropouts: list[tuple[float, float]] = field(default_factory=list)
    markers: list[tuple[float, str]] = field(default_factory=list)

    def emotion_at(self, t):
        """Emotion id at each time in `t` (array): the last change at or before it."""
        times = np.array([0.0] + [c[0] for c in self.emotion_changes])
        ids = np.array([self.emotion] + [c[1] for c in self.emotion_changes])
        return ids[np.searchsorted(times, t, side="right") - 1]


def has_session_end(path: Path) -> bool:
    """Cheap completeness probe: does the log's last line say `session_end`?"""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
        return json.loads(tail).get("type") == "session_end"
    except (OSError, ValueError, AttributeError):
        return False


def _number(ev: dict, key: str, where: str, out: list[Violation]) -> float | None:
    v = ev.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        out.append(Violation(FILE, where, f"'{key}' must be a finite number, got {v!r}"))
        return None
    return float(v)


def _read_events(path: Path, out: list[Violation]) -> list[tuple[int, dict]]:
    if path.stat().st_size > MAX_LOG_BYTES:
        out.append(Violation(FILE, "file", f"larger than {MAX_LOG_BYTES} bytes; refused unread"))
        return []
    events = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError as e:
                out.append(Violation(FILE, f"line {n}", f"not valid JSON ({e.msg})"))
                continue
            if not isinstance(ev, dict):
                out.append(Violation(FILE, f"line {n}", "each line must be a JSON object"))
                continue
            if ev.get("type") not in EVENT_TYPES:
                out.append(Violation(FILE, f"line {n}", f"unknown event type {ev.get('type')!r} (one of {', '.join(EVENT_TYPES)})"))
                continue
            events.append((n, ev))
    if not events and not out:
        out.append(Violation(FILE, "file", "empty: no events"))
    return events


def _check_start(n: int, ev: dict, folder_name: str, out: list[Violation]) -> dict:
    where = f"line {n} (session_start)"
    missing = [k for k in START_FIELDS if k not in ev]
    if missing:
        out.append(Violation(FILE, where, f"missing field(s) {', '.join(missing)}"))
    if "schema" in ev and ev["schema"] != contract.CAPTURE_SCHEMA:
        out.append(Violation(FILE, where, f"schema {ev['schema']!r} is not {contract.CAPTURE_SCHEMA!r}"))
    if "track_id" in ev and ev["track_id"] != folder_name:
        out.append(Violation(FILE, where, f"track_id {ev['track_id']!r} differs from the folder name {folder_name!r}"))
    meta = {"device": str(ev.get("device", "")), "started_at": str(ev.get("started_at", ""))}
    for key, parse in (("mode", contract.mode_id), ("emotion", contract.emotion_id)):
        if key in ev:
            try:
                meta[key] = parse(ev[key])
            except ValueError as e:
                out.append(Violation(FILE, where, str(e)))
    if "fps" in ev:
        meta["fps"] = _number(ev, "fps", where, out)
    return meta


def parse_session(path: Path, folder_name: str, out: list[Violation], n_frames: int | None = None) -> Session | None:
    """Parse the log, appending every violation to `out`; None if it cannot describe a session.

    `n_frames` is N from dynamics.npz, which `session_end.frames` must equal.
    """
    events = _read_events(path, out)
    if not events:
        return None
    n0, first = events[0]
    if first.get("type") != "session_start":
        out.append(Violation(FILE, f"line {n0}", "first event must be session_start"))
        return None
    meta = _check_start(n0, first, folder_name, out)
    n_end, last = events[-1]
    if last.get("type") != "session_end":
        out.append(Violation(FILE, f"line {n_end}", "last event must be session_end (log truncated or still being written)"))
        return None
    end_t = _number(last, "t", f"line {n_end} (session_end)", out)
    frames = last.get("frames")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 0:
        out.append(Violation(FILE, f"line {n_end} (session_end)", f"'frames' must be a non-negative integer, got {frames!r}"))
        frames = None
    elif n_frames is not None and frames != n_frames:
        out.append(Violation(FILE, f"line {n_end} (session_end)", f"frames={frames} but dynamics.npz holds N={n_frames}"))
    changes, dropouts, markers = [], [], []
    for n, ev in events[1:-1]:
        kind, where = ev["type"], f"line {n} ({ev['type']})"
        if kind in ("session_start", "session_end"):
            out.append(Violation(FILE, where, f"{kind} may appear only once"))
        elif kind == "emotion":
            t = _number(ev, "t", where, out)
            try:
                e = contract.emotion_id(ev.get("emotion"))
            except ValueError as err:
                out.append(Violation(FILE, where, str(err)))
                continue
            if t is not None:
                if changes and t < changes[-1][0]:
                    out.append(Violation(FILE, where, f"emotion change at t={t} is earlier than the previous one"))
                changes.append((t, e))
        elif kind == "dropout":
            t0, t1 = _number(ev, "t0", where, out), _number(ev, "t1", where, out)
            if t0 is None or t1 is None:
                continue
            if not 0 <= t0 < t1:
                out.append(Violation(FILE, where, f"dropout needs 0 <= t0 < t1, got t0={t0}, t1={t1}"))
            elif end_t is not None and t1 > end_t:
                out.append(Violation(FILE, where, f"dropout ends at t1={t1}, after the session end t={end_t}"))
            dropouts.append((t0, t1))
        else:
            t = _number(ev, "t", where, out)
            markers.append((t, str(ev.get("label", ""))))
    if None in (meta.get("mode"), meta.get("emotion"), meta.get("fps"), end_t, frames):
        return None
    return Session(folder_name, meta["mode"], meta["emotion"], meta["fps"], meta["device"],
                   meta["started_at"], end_t, frames, changes, dropouts, markers)
