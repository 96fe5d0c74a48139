"""The human records: bad input refused with the reason, records bound to the packages they judged."""

import json

import pytest

from lume_v6_dagster import contract
from lume_v6_dagster.acceptance import signoff as so

DIGESTS = {"ConditioningEncoderV6": "a" * 64, "FlowGenerator1StepV6": "b" * 64, "SANV6": "c" * 64}
ALL_PASS = [f"{m}=pass" for m in contract.MODES]


@pytest.mark.parametrize("items, by, date, message", [
    ([*ALL_PASS[:4], "disco=pass"], "A. Listener", "2026-11-25", "'disco' is not one of"),
    (ALL_PASS[:4], "A. Listener", "2026-11-25", "missing: aurora_veil"),
    ([*ALL_PASS[:4], "aurora_veil=maybe"], "A. Listener", "2026-11-25", "must be pass or fail"),
    ([*ALL_PASS[:4], "aurora_veil"], "A. Listener", "2026-11-25", "expected KEY=pass|fail"),
    ([*ALL_PASS, "sky_garden=fail"], "A. Listener", "2026-11-25", "sky_garden is given twice"),
    (ALL_PASS, "  ", "2026-11-25", "--by must name the person"),
    (ALL_PASS, "A. Listener", "25/11/2026", "not a date (YYYY-MM-DD)"),
])
def test_bad_input_is_refused_with_the_reason(items, by, date, message):
    with pytest.raises(so.SignoffError, match=message.replace("|", r"\|").replace("(", r"\(").replace(")", r"\)")):
        so.make_record(so.LISTENING, by, date, items, DIGESTS)


def test_a_record_counts_only_for_the_packages_it_was_made_for(tmp_path):
    assert so.read_record(tmp_path, so.LISTENING, DIGESTS) == ("pending", "not signed yet")
    so.write_record(tmp_path, so.LISTENING, so.make_record(so.LISTENING, "A. Listener", "2026-11-25", ALL_PASS, DIGESTS))
    verdict, said = so.read_record(tmp_path, so.LISTENING, DIGESTS)
    assert verdict == "pass" and "A. Listener on 2026-11-25" in said
    retrained = {**DIGESTS, "FlowGenerator1StepV6": "d" * 64}
    verdict, said = so.read_record(tmp_path, so.LISTENING, retrained)
    assert verdict == "pending" and "signed for another model" in said


def test_a_failed_mode_fails_and_a_corrupt_record_is_named(tmp_path):
    items = [*ALL_PASS[:4], "aurora_veil=fail"]
    path = so.write_record(tmp_path, so.LISTENING, so.make_record(so.LISTENING, "A. Listener", "2026-11-25", items, DIGESTS))
    assert so.read_record(tmp_path, so.LISTENING, DIGESTS)[0] == "fail"
    path.write_text("{not json")
    verdict, said = so.read_record(tmp_path, so.LISTENING, DIGESTS)
    assert verdict == "fail" and str(path) in said


def test_on_device_record_needs_both_steps():
    with pytest.raises(so.SignoffError, match="missing: v6_swap"):
        so.make_record(so.ON_DEVICE, "A. Tester", "2026-11-25", ["v5_chain1=pass"], DIGESTS)
    record = so.make_record(so.ON_DEVICE, "A. Tester", "2026-11-25", ["v5_chain1=pass", "v6_swap=pass"], DIGESTS)
    assert record["results"] == {"v5_chain1": "pass", "v6_swap": "pass"} and json.dumps(record)
