import os

import pytest
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


@pytest.mark.parametrize("args", [["pools"], ["retention"], ["signoff", "--by", "ana", "sky_garden=pass"], ["worker", "--name", "x", "--queue", "x"]])
def test_every_command_of_a_deployment_reads_the_same_default_home(args, tmp_path, monkeypatch):
    """Two-host with DAGSTER_HOME unset: each command picks ./.dagster-two-host (the PostgreSQL one), none ./.dagster."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    for key, value in {"LUME_DEPLOYMENT": "two-host", "LUME_PG_HOST": "127.0.0.1", "LUME_PG_PORT": "1", "LUME_PG_USER": "lume",
                       "LUME_PG_PASSWORD": "x", "LUME_PG_DB": "lume_v6", "LUME_BROKER_URL": "redis://127.0.0.1:1/0",
                       "LUME_CAPTURE_ROOT": str(tmp_path), "LUME_ARTIFACT_ROOT": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    CliRunner().invoke(main, args)  # each fails without a database; the home is chosen first
    assert os.environ.get("DAGSTER_HOME") == str(tmp_path / ".dagster-two-host")


def test_a_demo_with_fewer_than_two_tracks_per_mode_is_refused_before_it_simulates(tmp_path, monkeypatch):
    """Its split would refuse a mode with a single track after every ingest had run."""
    monkeypatch.setenv("LUME_CAPTURE_ROOT", str(tmp_path / "cap"))
    done = CliRunner().invoke(main, ["demo", "--tracks", "6", "--profile", "tiny"])
    assert done.exit_code == 2 and "--tracks" in done.output and "x>=10" in done.output
    assert not (tmp_path / "cap").exists()
