"""The human records: the per-mode listening sign-off, the on-device check, and the override that
promotes a challenger over the champion.

Records are an append-only history, one JSON object a line in `<artifacts>/listening/signoffs.jsonl`.
Each names who (the signer, the OS user, the host), when (UTC, taken by the machine, not typed),
the report the person judged and the sha256 of its V6 packages: a record for other packages
(last week's model, before tonight's retrain) does not count. The newest record of a kind for
these packages decides. A record is PASS only when it is whole and every key says pass;
anything malformed is FAIL with the reason, never a crash and never a PASS.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from lume_v6_dagster import contract

PASS, FAIL, PENDING = "pass", "fail", "pending"
HISTORY = Path("listening") / "signoffs.jsonl"  # under the artifact root


@dataclass(frozen=True)
class Kind:
    id: str
    keys: tuple[str, ...]  # what the person judged, each pass or fail
    what: str
    needs_comment: bool = False  # the override must say why


LISTENING = Kind("listening", contract.MODES, "listening test, per mode")
# The release plan: the previous app build verified live with the V5 models (the "Chain 1"
# dispatch fixes), then V6 swapped in and re-verified on the iPhone.
ON_DEVICE = Kind("on_device", ("v5_chain1", "v6_swap"), "on-device verification")
# A person promotes a challenger that lost to the champion, on purpose and on the record.
OVERRIDE = Kind("champion_override", ("promote",), "promotion over the champion", needs_comment=True)
KINDS = {k.id: k for k in (LISTENING, ON_DEVICE, OVERRIDE)}


class SignoffError(ValueError):
    """Bad input to `lume-v6 signoff` or `lume-v6 promote`: nothing is written."""


@dataclass(frozen=True)
class Entry:
    line: int
    record: dict | None  # None: the line is not a JSON object
    error: str = ""


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


def parse_input(kind: Kind, by: str, items: list[str], comment: str = "") -> dict[str, str]:
    """The results a person typed, checked with their name and comment before anything is looked up."""
    if not by.strip():
        raise SignoffError("--by must name the person signing")
    if kind.needs_comment and not comment.strip():
        raise SignoffError(f"a {kind.what} must say why (--why)")
    return parse_results(items, kind)


def make_record(kind: Kind, by: str, items: list[str], report_run_id: str, packages_sha256: dict[str, str],
                comment: str = "", now: dt.datetime | None = None) -> dict:
    """A whole record, stamped with UTC time, OS user and host; raises SignoffError on bad input."""
    results = parse_input(kind, by, items, comment)
    record = {"kind": kind.id, "signed_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="milliseconds"),
              "signer": by.strip(), "os_user": getpass.getuser(), "host": socket.gethostname(), "report_run_id": report_run_id,
              "packages_sha256": dict(sorted(packages_sha256.items())), "results": results, "comment": comment.strip()}
    if problems := check(record, kind):
        raise SignoffError("; ".join(problems))
    return record


def append(artifacts: Path, record: dict) -> Path:
    """Add one line to the history in a single write; earlier lines are never rewritten."""
    path = Path(artifacts) / HISTORY
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    with open(path, "ab") as f:
        if f.tell() and not _ends_with_newline(path):  # a line cut short by a crash stays its own (malformed) line
            line = "\n" + line
        f.write(line.encode())
        f.flush()
        os.fsync(f.fileno())
    return path


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def history(artifacts: Path) -> list[Entry]:
    """Every line of the history, oldest first; a line that is not a JSON object carries its error."""
    path = Path(artifacts) / HISTORY
    if not path.exists():
        return []
    entries = []
    for n, text in enumerate(path.read_bytes().decode("utf-8", errors="replace").splitlines(), 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as e:
            entries.append(Entry(n, None, f"not JSON ({e})"))
            continue
        entries.append(Entry(n, record) if isinstance(record, dict) else Entry(n, None, f"a JSON {type(record).__name__}, not an object"))
    return entries


def _utc(value) -> dt.datetime | None:
    try:
        when = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return when if when is not None and when.tzinfo is not None else None


def check(record: dict, kind: Kind) -> list[str]:
    """What is wrong with a record of `kind` (empty when it is whole)."""
    problems = []
    results = record.get("results")
    if not isinstance(results, dict):
        problems.append(f"results is {type(results).__name__}, not an object of {', '.join(kind.keys)}")
    else:
        problems += [f"{k} not judged" for k in kind.keys if k not in results]
        problems += [f"{k}={results[k]!r} is neither pass nor fail" for k in kind.keys if k in results and results[k] not in (PASS, FAIL)]
        problems += [f"unknown key {k!r}" for k in results if k not in kind.keys]
    for field in ("signer", "os_user", "host", "report_run_id"):
        if not isinstance(record.get(field), str) or not record[field].strip():
            problems.append(f"{field} missing or empty")
    if _utc(record.get("signed_at")) is None:
        problems.append(f"signed_at {record.get('signed_at')!r} is not an ISO 8601 time with a time zone")
    digests = record.get("packages_sha256")
    if not isinstance(digests, dict) or not digests or not all(isinstance(v, str) for v in digests.values()):
        problems.append("packages_sha256 missing or not an object of digests")
    if kind.needs_comment and not (isinstance(record.get("comment"), str) and record["comment"].strip()):
        problems.append("comment (why) missing")
    elif not isinstance(record.get("comment", ""), str):
        problems.append("comment is not text")
    return problems


def for_packages(artifacts: Path, packages_sha256: dict[str, str]) -> list[Entry]:
    """The history that concerns these packages, oldest first: their records and every unreadable line."""
    want = dict(sorted(packages_sha256.items()))
    return [e for e in history(artifacts) if e.record is None or e.record.get("packages_sha256") == want]


def decisive(artifacts: Path, kind: Kind, packages_sha256: dict[str, str]) -> tuple[str, str, dict | None]:
    """(verdict, what it says, the deciding record) for `kind` and these packages.

    The newest line decides that is either of this kind for these packages or unreadable (it
    may have been one): a malformed line counts as FAIL until someone signs again.
    """
    path = Path(artifacts) / HISTORY
    want, elsewhere = dict(sorted(packages_sha256.items())), 0
    for e in reversed(history(artifacts)):
        if e.record is None:
            return FAIL, f"{path}, line {e.line}: {e.error}: a malformed record counts as fail (sign again)", None
        if e.record.get("kind") != kind.id:
            continue
        if e.record.get("packages_sha256") != want:
            elsewhere += 1
            continue
        if problems := check(e.record, kind):
            return FAIL, f"{path}, line {e.line}: malformed record ({'; '.join(problems)})", None
        r = e.record
        who = f"{r['signer']} ({r['os_user']}@{r['host']}) at {r['signed_at']}, report {r['report_run_id'][:8]}"
        if failed := [k for k in kind.keys if r["results"][k] == FAIL]:
            return FAIL, f"failed: {', '.join(failed)} (signed by {who})", r
        return PASS, f"all pass, signed by {who}", r
    if elsewhere:
        return PENDING, f"{elsewhere} record(s) signed for another model (package sha256 differ); sign these packages", None
    return PENDING, "not signed yet", None


def read_record(artifacts: Path, kind: Kind, packages_sha256: dict[str, str]) -> tuple[str, str]:
    """(verdict, what it says): pass, fail or pending, for gate 9."""
    return decisive(artifacts, kind, packages_sha256)[:2]


def last_signed_at(artifacts: Path) -> dt.datetime | None:
    """When the newest readable record was signed (any kind): reports after it are the ones not yet heard."""
    times = [t for e in history(artifacts) if e.record is not None and (t := _utc(e.record.get("signed_at"))) is not None]
    return max(times, default=None)


def choose_report(reports: list, asked: str | None, since: dt.datetime | None):
    """The report a record binds to (`reports` newest first, each with `run_id` and `made_at`).

    `asked` (a run id or its prefix) names the report the person listened to. Without it, the
    newest report, unless more than one was made since the last sign-off: then the person
    must say which one they heard.
    """
    if not reports:
        raise SignoffError("no acceptance report yet: run `make demo` or the train job first, then listen to its previews")
    if asked:
        found = [r for r in reports if r.run_id.startswith(asked.strip())]
        if len(found) != 1:
            raise SignoffError(f"--report {asked!r} matches {len(found)} of the {len(reports)} newest reports; "
                               f"give more of its run id (newest: {', '.join(r.run_id[:8] for r in reports[:5])})")
        return found[0]
    unheard = [r for r in reports if since is None or r.made_at > since]
    if len(unheard) > 1:
        listed = "\n".join(f"  {r.run_id}  made {r.made_at.isoformat(timespec='seconds')}  {r.page}" for r in unheard[:10])
        raise SignoffError(f"{len(unheard)} reports were made since the last sign-off; say which one you listened to "
                           f"with --report RUN_ID:\n{listed}")
    return reports[0]
