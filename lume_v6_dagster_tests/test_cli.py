from click.testing import CliRunner

from lume_v6_dagster.cli import main
from lume_v6_dagster_tests.conftest import read_events, write_events


def test_validate_ok_exits_zero(sim_root):
    result = CliRunner().invoke(main, ["validate", str(sim_root / "s01-sky-garden")])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_validate_prints_every_violation_and_fails(track):
    events = read_events(track)
    events[0]["mode"] = 5
    events[-1]["frames"] = 2
    write_events(track, events)
    result = CliRunner().invoke(main, ["validate", str(track)])
    assert result.exit_code == 1
    assert "session.jsonl: line 1" in result.output and "reserved" in result.output
    assert "frames=2" in result.output
