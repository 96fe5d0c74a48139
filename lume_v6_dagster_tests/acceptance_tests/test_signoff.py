"""The human records: bad input refused, records bound to the packages and report they judged,
an append-only history in which the newest record decides and a malformed one is FAIL, never PASS."""

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lume_v6_dagster import contract
from lume_v6_dagster.acceptance import signoff as so

DIGESTS = {"ConditioningEncoderV6": "a" * 64, "FlowGenerator1StepV6": "b" * 64, "SANV6": "c" * 64}
ALL_PASS = [f"{m}=pass" for m in contract.MODES]
UTC = dt.timezone.utc


def record(items=ALL_PASS, by="A. Listener", digests=DIGESTS, kind=so.LISTENING, comment="", minute=0):
    return so.make_record(kind, by, items, "f00dcafe-report", digests, comment, now=dt.datetime(2026, 11, 25, 20, minute, tzinfo=UTC))


@pytest.mark.parametrize("items, by, message", [
    ([*ALL_PASS[:4], "disco=pass"], "A. Listener", "'disco' is not one of"),
    (ALL_PASS[:4], "A. Listener", "missing: aurora_veil"),
    ([*ALL_PASS[:4], "aurora_veil=maybe"], "A. Listener", "must be pass or fail"),
    ([*ALL_PASS[:4], "aurora_veil"], "A. Listener", "expected KEY=pass|fail"),
    ([*ALL_PASS, "sky_garden=fail"], "A. Listener", "sky_garden is given twice"),
    (ALL_PASS, "  ", "--by must name the person"),
])
def test_bad_input_is_refused_with_the_reason(items, by, message):
    with pytest.raises(so.SignoffError, match=message.replace("|", r"\|")):
        record(items, by)


def test_a_record_names_who_when_where_and_the_report(tmp_path):
    r = record()
    assert r["signed_at"] == "2026-11-25T20:00:00.000+00:00" and r["os_user"] and r["host"] and r["report_run_id"] == "f00dcafe-report"
    assert so.check(r, so.LISTENING) == []


def test_a_record_counts_only_for_the_packages_it_was_made_for(tmp_path):
    assert so.read_record(tmp_path, so.LISTENING, DIGESTS) == ("pending", "not signed yet")
    so.append(tmp_path, record())
    verdict, said = so.read_record(tmp_path, so.LISTENING, DIGESTS)
    assert verdict == "pass" and "A. Listener" in said and "2026-11-25T20:00:00.000+00:00" in said and "report f00dcafe" in said
    verdict, said = so.read_record(tmp_path, so.LISTENING, {**DIGESTS, "FlowGenerator1StepV6": "d" * 64})
    assert verdict == "pending" and "signed for another model" in said
    assert so.read_record(tmp_path, so.ON_DEVICE, DIGESTS)[0] == "pending"  # another kind


def test_history_is_append_only_and_the_newest_record_for_these_packages_decides(tmp_path):
    other = {**DIGESTS, "SANV6": "e" * 64}
    so.append(tmp_path, record([*ALL_PASS[:4], "aurora_veil=fail"], minute=1))
    assert so.read_record(tmp_path, so.LISTENING, DIGESTS)[0] == "fail"
    so.append(tmp_path, record(by="B. Listener", minute=2))
    so.append(tmp_path, record(by="C. Listener", digests=other, minute=3))  # candidate B does not erase A's record
    lines = (tmp_path / so.HISTORY).read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["results"]["aurora_veil"] == "fail"
    verdict, said = so.read_record(tmp_path, so.LISTENING, DIGESTS)
    assert verdict == "pass" and "B. Listener" in said
    assert [e.record["signer"] for e in so.for_packages(tmp_path, DIGESTS)] == ["A. Listener", "B. Listener"]
    assert so.last_signed_at(tmp_path) == dt.datetime(2026, 11, 25, 20, 3, tzinfo=UTC)


def test_a_line_cut_short_by_a_crash_fails_until_someone_signs_again(tmp_path):
    so.append(tmp_path, record())
    with open(tmp_path / so.HISTORY, "a") as f:
        f.write('{"kind": "listening", "signer": "half')  # no newline: the write was cut
    verdict, said = so.read_record(tmp_path, so.LISTENING, DIGESTS)
    assert verdict == "fail" and f"{tmp_path / so.HISTORY}, line 2: not JSON" in said
    so.append(tmp_path, record(by="B. Listener", minute=5))
    assert so.read_record(tmp_path, so.LISTENING, DIGESTS)[0] == "pass"
    assert len((tmp_path / so.HISTORY).read_text().splitlines()) == 3


def test_the_override_must_say_why():
    with pytest.raises(so.SignoffError, match="must say why"):
        record(["promote=pass"], kind=so.OVERRIDE, comment="  ")
    assert record(["promote=pass"], kind=so.OVERRIDE, comment="V5 regression on device")["comment"] == "V5 regression on device"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
FIELDS = ("kind", "signed_at", "signer", "os_user", "host", "report_run_id", "results", "comment")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS + ("results.key",)), value=JSON, drop=st.booleans())
def test_a_malformed_record_is_fail_with_its_reason_never_pass_never_a_crash(tmp_path_factory, field, value, drop):
    """Start from a whole, all-pass record for these packages and break one field; only an unchanged field may pass."""
    folder = tmp_path_factory.mktemp("h")
    r = record()
    if field == "results.key":
        r["results"] = dict(r["results"])
        r["results"].pop("aurora_veil") if drop else r["results"].__setitem__("aurora_veil", value)
    elif drop:
        r.pop(field)
    else:
        r[field] = value
    so.append(folder, r)
    verdict, said = so.read_record(folder, so.LISTENING, DIGESTS)
    whole = (field == "comment" and (drop or isinstance(value, str))) or not drop and (  # a comment is optional text
        (field == "kind" and value == "listening") or (field == "results.key" and value == "pass") or (field == "signed_at" and so._utc(value) is not None) or
        (field in ("signer", "os_user", "host", "report_run_id") and isinstance(value, str) and value.strip()))
    if field == "kind" and (drop or value != "listening"):
        assert verdict == "pending"  # not a listening record at all
    elif whole:
        assert verdict == "pass"
    else:
        assert verdict == "fail" and ("malformed" in said or "failed:" in said), said


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=JSON | st.text(max_size=40))
def test_any_line_in_the_history_reads_without_a_crash(tmp_path_factory, line):
    folder = tmp_path_factory.mktemp("h")
    path = folder / so.HISTORY
    path.parent.mkdir(parents=True)
    path.write_text((json.dumps(line) if not isinstance(line, str) else line.replace("\n", " ")) + "\n")
    verdict, _ = so.read_record(folder, so.LISTENING, DIGESTS)
    assert verdict in ("fail", "pending")


@dataclass
class Report:
    run_id: str
    made_at: dt.datetime
    page: Path = Path("report.html")


def test_the_record_binds_to_the_report_the_person_names_and_refuses_to_guess():
    r1, r2 = Report("11111111-aaaa", dt.datetime(2026, 12, 1, 20, tzinfo=UTC)), Report("22222222-bbbb", dt.datetime(2026, 12, 1, 23, tzinfo=UTC))
    newest_first = [r2, r1]
    assert so.choose_report(newest_first, "1111", None) is r1  # listened to R1 while R2 was being made
    with pytest.raises(so.SignoffError, match="2 reports were made since the last sign-off"):
        so.choose_report(newest_first, None, dt.datetime(2026, 12, 1, 19, tzinfo=UTC))
    assert so.choose_report(newest_first, None, dt.datetime(2026, 12, 1, 21, tzinfo=UTC)) is r2
    with pytest.raises(so.SignoffError, match="matches 0"):
        so.choose_report(newest_first, "3333", None)
    with pytest.raises(so.SignoffError, match="no acceptance report yet"):
        so.choose_report([], None, None)
