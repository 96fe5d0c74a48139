"""The human records that FULLY SHIPPED needs: the per-mode listening sign-off and the on-device check.

Each names who and when and the sha256 of the V6 packages it was made for; a record for other
packages (last week's model, before tonight's retrain) does not count. Records are written by
`lume-v6 signoff` and read by the acceptance report.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from lume_v6_dagster import contract
from lume_v6_dagster.atomic_files import write_json

PASS, FAIL = "pass", "fail"


@dataclass(frozen=True)
class Kind:
    file: str  # under <artifacts>/listening/
    keys: tuple[str, ...]  # what the person judged, each pass or fail
    what: str


LISTENING = Kind("signoff.json", contract.MODES, "listening test, per mode")
# The release plan: the previous app build verified live with the V5 models (the "Chain 1"
# dispatch fixes), then V6 swapped in and re-verified on the iPhone.
ON_DEVICE = Kind("on_device.json", ("v5_chain1", "v6_swap"), "on-device verification")


class SignoffError(ValueError):
    """Bad input to `lume-v6 signoff`: nothing is written."""


def parse_results(items: list[str], kind: Kind) -> dict[str, str]:
    """`KEY=pass|fail` for every key of the kind, each once; anything else is refused."""
    results = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SignoffError(f"{item!r}: expected KEY=pass|fail (keys: {', '.join(kind.keys)})")
        if key not in kind.keys:
            raise SignoffError(f"{key!r} is not one of {', '.join(kind.keys)}")
        if value not in (PASS, FAIL):
            raise SignoffError(f"{key}={value!r}: the value must be pass or fail")
        if key in results:
            raise SignoffError(f"{key} is given twice")
        results[key] = value
    if missing := [k for k in kind.keys if k not in results]:
        raise SignoffError(f"missing: {', '.join(missing)} (every one of {', '.join(kind.keys)} must be judged)")
    return results


def make_record(kind: Kind, by: str, date: str, items: list[str], packages_sha256: dict[str, str]) -> dict:
    """A validated record; raises SignoffError on an empty name, a malformed date or bad results."""
    if not by.strip():
        raise SignoffError("--by must name the person signing")
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise SignoffError(f"--date {date!r} is not a date (YYYY-MM-DD)") from None
    return {"kind": kind.what, "signed_by": by.strip(), "date": date, "results": parse_results(items, kind),
            "packages_sha256": dict(sorted(packages_sha256.items()))}


def write_record(artifacts: Path, kind: Kind, record: dict) -> Path:
    path = Path(artifacts) / "listening" / kind.file
    write_json(path, record)
    return path


def read_record(artifacts: Path, kind: Kind, packages_sha256: dict[str, str]) -> tuple[str, str]:
    """(verdict, what it says) of the record for these packages: pass, fail or pending."""
    path = Path(artifacts) / "listening" / kind.file
    if not path.exists():
        return "pending", "not signed yet"
    try:
        doc = json.loads(path.read_text())
        results, by, date = doc["results"], doc["signed_by"], doc["date"]
    except (ValueError, KeyError, TypeError) as e:
        return "fail", f"unreadable record {path}: {e}"
    if doc.get("packages_sha256") != dict(sorted(packages_sha256.items())):
        return "pending", f"signed for another model by {by} on {date} (package sha256 differ); sign these packages"
    if failed := [k for k in kind.keys if results.get(k) == FAIL]:
        return "fail", f"failed: {', '.join(failed)} (signed by {by} on {date})"
    return "pass", f"all pass, signed by {by} on {date}"
