"""Find new, complete capture folders cheaply (the sensor's core, free of Dagster).

The cursor keeps a ctime watermark and the folders still being copied. Each tick lists the
root once (one stat per folder) and opens only folders that changed since the watermark or
are pending, so its cost follows what changed, not what exists. ctime is used because copy
tools that preserve mtimes (rsync -a, cp -p) cannot set it back.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from lume_v6_dagster import contract
from lume_v6_dagster.capture.folder import folder_state, stat_fingerprint

LOOKBACK_SECONDS = 5.0  # re-open folders this close to the watermark (coarse filesystem clocks)


@dataclass
class ScanCursor:
    watermark: float = 0.0
    pending: dict[str, float] = field(default_factory=dict)  # track id -> first seen
    reported: list[str] = field(default_factory=list)  # stale / invalid / changed, said once

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> "ScanCursor":
        return cls(**json.loads(text)) if text else cls()


@dataclass
class ScanResult:
    new: list[tuple[str, str]] = field(default_factory=list)  # (track id, fingerprint)
    changed: list[str] = field(default_factory=list)  # ingested, then changed on disk
    problems: list[str] = field(default_factory=list)  # bad names, case clashes, stale copies
    opened: int = 0  # folders looked into this tick
    cursor: ScanCursor = field(default_factory=ScanCursor)


def scan(
    root: Path,
    cursor: ScanCursor,
    is_known: Callable[[str], bool],
    ingested_fingerprint: Callable[[str], str | None],
    now: float,
    settle_seconds: float,
    stale_hours: float,
    lookback: float = LOOKBACK_SECONDS,
) -> ScanResult:
    """One sensor tick over `root`; returns what to add, what to flag and the next cursor."""
    out = ScanResult(cursor=ScanCursor(cursor.watermark, dict(cursor.pending), list(cursor.reported)))
    if not Path(root).is_dir():
        out.problems.append(f"capture root {root} does not exist")
        return out
    entries = [e for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir()]
    newest = cursor.watermark
    for e in entries:
        ctime = e.stat().st_ctime
        newest = max(newest, ctime)
        if ctime <= cursor.watermark - lookback and e.name not in cursor.pending:
            continue
        out.opened += 1
        _visit(Path(e.path), is_known, ingested_fingerprint, now, settle_seconds, stale_hours, out)
    out.cursor.watermark = newest
    return out


def _report(out: ScanResult, key: str, message: str) -> None:
    if key not in out.cursor.reported:
        out.cursor.reported.append(key)
        out.problems.append(message)


def _visit(path, is_known, ingested_fingerprint, now, settle, stale_hours, out) -> None:
    name = path.name
    if not contract.TRACK_ID_RE.match(name):  # lower case only, so ids are unique case-insensitively
        _report(out, f"name:{name}", f"{name}: folder name is not a valid track id ({contract.TRACK_ID_RE.pattern}); skipped")
        return
    if is_known(name):
        recorded = ingested_fingerprint(name)
        if recorded and recorded != stat_fingerprint(path)[0]:
            out.changed.append(name)
            _report(out, f"changed:{name}:{recorded}", f"{name}: changed after it was ingested; flagged, not retrained on")
        return
    state = folder_state(path, now, settle)
    if state.complete:
        out.cursor.pending.pop(name, None)
        out.new.append((name, state.fingerprint))
        return
    first = out.cursor.pending.setdefault(name, now)
    if now - first > stale_hours * 3600:
        _report(out, f"stale:{name}", f"{name}: incomplete for over {stale_hours} h ({state.reason})")
