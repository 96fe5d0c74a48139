"""The demo's own entry point, on the tiny profile, through a persistent Dagster instance."""

import dagster as dg
from click.testing import CliRunner

from lume_v6_dagster.cli import main


def test_demo_runs_the_chain_and_a_second_run_reuses_it(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    for key, value in {"DAGSTER_HOME": home, "LUME_CAPTURE_ROOT": tmp_path / "cap", "LUME_ARTIFACT_ROOT": tmp_path / "art"}.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("LUME_TRAINING_THREADS", "1")
    first = CliRunner().invoke(main, ["demo", "--tracks", "10", "--profile", "tiny"])
    assert first.exit_code == 0, first.output
    assert "tracks: 10 (0 reused, 0 failed)" in first.output
    assert "encoder_flow_v6:" in first.output and "v5_baseline:" in first.output
    last = first.output.strip().splitlines()[-1]
    assert last.startswith(str(tmp_path / "art" / "release" / "reports")) and last.endswith("report.html")
    assert "| 9 | subjective | listening test |" in first.output and "status: " in first.output
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert len(instance.get_materialized_partitions(dg.AssetKey("track_pairs"))) == 10
        assert instance.get_latest_materialization_event(dg.AssetKey("san_v6")) is not None
    second = CliRunner().invoke(main, ["demo", "--tracks", "10", "--profile", "tiny"])
    assert second.exit_code == 0, second.output
    assert "tracks: 10 (10 reused, 0 failed)" in second.output and "training reused" in second.output
    assert second.output.strip().splitlines()[-1] == last
