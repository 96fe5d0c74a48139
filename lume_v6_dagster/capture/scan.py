"""Find new, complete capture folders cheaply (the sensor's core, free of Dagster).

The cursor keeps a ctime watermark, the folders still being copied (pending) and the
tracks requested but not yet ingested. Each tick lists the root once (one stat per folder)
and opens only folders that changed since the watermark, plus pending and requested ones,
so its cost follows what changed and what is in flight, not what exists. ctime is used
because copy tools that preserve mtimes (rsync -a, cp -p) cannot set it back; a file
rewritten in place does not move its folder's ctime, which is why requested tracks are
re-opened every tick until they have pairs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from lume_v6_dagster import contract
from lume_v6_dagster.capture.folder import folder_state

LOOKBACK_SECONDS = 5.0  # re-open folders this close to the watermark (coarse filesystem clocks)


@dataclass
class ScanCursor:
    watermark: float = 0.0
    pending: dict[str, float] = field(default_factory=dict)  # track id -> first seen incomplete
    requested: dict[str, str] = field(default_factory=dict)  # track id -> fingerprint last requested, until ingested
    reported: list[str] = field(default_factory=list)  # stale / invalid / changed, said once

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str | None) -> "ScanCursor":
        return cls(**json.loads(text)) if text else cls()


@dataclass
class ScanResult:
    new: list[tuple[str, str]] = field(default_factory=list)  # (track id, fingerprint): add + ingest
    retry: list[tuple[str, str]] = field(default_factory=list)  # known, not ingested, content changed: ingest again
    changed: list[str] = field(default_factory=list)  # ingested, then changed on disk
    problems: list[str] = field(default_factory=list)  # bad names, case clashes, stale copies
    opened: int = 0  # folders looked into this tick
    cursor: ScanCursor = field(default_factory=ScanCursor)


def scan(
    root: Path,
    cursor: ScanCursor,
    is_known: Callable[[str], bool],
    ingest_changes: Callable[[str], list[str] | None],
    now: float,
    settle_seconds: float,
    stale_hours: float,
    lookback: float = LOOKBACK_SECONDS,
) -> ScanResult:
    """One sensor tick over `root`; returns what to add, retry and flag, and the next cursor.

    `ingest_changes(track)` is None while a known track has no pairs yet, else the contract
    files whose content changed since it was ingested.
    """
    out = ScanResult(cursor=ScanCursor(cursor.watermark, dict(cursor.pending), dict(cursor.requested), list(cursor.reported)))
    if not Path(root).is_dir():
        out.problems.append(f"capture root {root} does not exist")
        return out
    entries = [e for e in os.scandir(root) if not e.name.startswith(".") and e.is_dir()]
    names = {e.name for e in entries}
    for gone in (set(out.cursor.pending) | set(out.cursor.requested)) - names:  # deleted while in flight
        out.cursor.pending.pop(gone, None)
        out.cursor.requested.pop(gone, None)
    newest = cursor.watermark
    for e in entries:
        ctime = e.stat().st_ctime
        newest = max(newest, ctime)
        if ctime <= cursor.watermark - lookback and e.name not in out.cursor.pending and e.name not in out.cursor.requested:
            continue
        out.opened += 1
        _visit(Path(e.path), is_known, ingest_changes, now, settle_seconds, stale_hours, out)
    out.cursor.watermark = newest
    return out


def _report(out: ScanResult, key: str, message: str) -> None:
    if key not in out.cursor.reported:
        out.cursor.reported.append(key)
        out.problems.append(message)


def _visit(path, is_known, ingest_changes, now, settle, stale_hours, out) -> None:
    name = path.name
    if not contract.TRACK_ID_RE.match(name):  # lower case only, so ids are unique case-insensitively
        _report(out, f"name:{name}", f"{name}: folder name is not a valid track id ({contract.TRACK_ID_RE.pattern}); skipped")
        return
    known = is_known(name)
    changes = ingest_changes(name) if known else None
    if changes is not None:  # ingested: from now on only a change of content matters
        out.cursor.requested.pop(name, None)
        if changes:
            out.changed.append(name)
            _report(out, f"changed:{name}:{','.join(changes)}", f"{name}: {', '.join(changes)} changed after it was ingested; flagged, not retrained on")
        return
    state = folder_state(path, now, settle)
    if state.complete:
        out.cursor.pending.pop(name, None)
        if out.cursor.requested.get(name) != state.fingerprint:  # new, or failed and since rewritten
            out.cursor.requested[name] = state.fingerprint
            (out.retry if known else out.new).append((name, state.fingerprint))
        return
    first = out.cursor.pending.setdefault(name, now)
    if now - first > stale_hours * 3600:
        _report(out, f"stale:{name}", f"{name}: incomplete for over {stale_hours} h ({state.reason})")
