"""How a launched run's steps and the demo's track processes start."""

import os

from lume_v6_dagster import runs


def test_steps_fork_from_the_preloaded_server_until_the_environment_changes(monkeypatch):
    """The fork server keeps the environment it started with: after a change, a step forked from it
    would read the old artifact root, so steps spawn afresh instead."""
    monkeypatch.setattr(runs, "_SERVER_ENV", {})
    monkeypatch.setenv("LUME_ARTIFACT_ROOT", "/first")
    assert runs._start_method() == {"forkserver": {"preload_modules": ["lume_v6_dagster.runs"]}}
    assert runs.process_context().get_start_method() == "forkserver"
    monkeypatch.setenv("LUME_ARTIFACT_ROOT", "/second")
    assert runs._start_method() == {"spawn": {}} and runs.process_context().get_start_method() == "spawn"
    monkeypatch.setenv("LUME_ARTIFACT_ROOT", "/first")
    assert "forkserver" in runs._start_method()


def test_a_tracks_ingest_through_the_executor_runs_in_this_process_with_todays_settings(sim_root, tmp_path, monkeypatch):
    """One host: ingest_track's executor is in-process, so no fork-server settings go into its run config;
    and a job this process resolved before under other settings (here two hosts, as a test of the
    two-host deployment leaves it in its xdist worker) is not what runs: Dagster keeps the last one."""
    import dagster as dg

    from lume_v6_dagster.partitions import tracks

    with monkeypatch.context() as two_host:
        for key, value in {"LUME_DEPLOYMENT": "two-host", "LUME_BROKER_URL": "redis://127.0.0.1:1/0", "LUME_RESULT_BACKEND": "redis://127.0.0.1:1/1",
                           "LUME_CAPTURE_ROOT": str(sim_root), "LUME_ARTIFACT_ROOT": str(tmp_path / "elsewhere")}.items():
            two_host.setenv(key, value)
        assert runs.reconstructable("ingest_track").get_definition().executor_def.name == "celery"
    for key, value in {"DAGSTER_HOME": tmp_path / "home", "LUME_CAPTURE_ROOT": sim_root, "LUME_ARTIFACT_ROOT": tmp_path / "art"}.items():
        monkeypatch.setenv(key, str(value))
    (tmp_path / "home").mkdir()
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(tracks.name, ["s01-sky-garden"])
        run = runs.execute("ingest_track", instance, tags={"dagster/partition": "s01-sky-garden"}, through_executor=True, shown=False)
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert {s.step_key for s in instance.get_run_step_stats(run.run_id)} >= {"raw_capture", "validated_capture", "track_pairs"}
    assert (tmp_path / "art" / "tracks" / "s01-sky-garden" / "pairs.json").exists() and not (tmp_path / "elsewhere").exists()


def test_resolving_the_two_host_jobs_leaves_this_process_environment_as_it_was(tmp_path, monkeypatch):
    """Loading the two-host definitions once set LUME_RESULT_BACKEND in the loading process for good: every process started
    from it later (a benchmark's workers, a second deployment's) stored its results in that first broker's Redis. The
    backend is resolved where the run executes instead, from that process's own environment."""
    from lume_v6_dagster.celery_executor import HostCeleryExecutor

    monkeypatch.delenv("LUME_RESULT_BACKEND", raising=False)
    for key, value in {"LUME_DEPLOYMENT": "two-host", "LUME_BROKER_URL": "redis://127.0.0.1:1/0",
                       "LUME_CAPTURE_ROOT": str(tmp_path / "captures"), "LUME_ARTIFACT_ROOT": str(tmp_path / "artifacts")}.items():
        monkeypatch.setenv(key, value)
    before = dict(os.environ)
    executor = runs.reconstructable("train").get_definition().executor_def
    assert executor.name == "celery" and dict(os.environ) == before
    config = {"broker": "redis://127.0.0.1:1/0", "backend": None, "config_source": {}, "retries": {"enabled": {}}}
    assert HostCeleryExecutor.from_config(config).backend == "redis://127.0.0.1:1/1"  # the broker's next database, as the workers'
    monkeypatch.setenv("LUME_RESULT_BACKEND", "redis://elsewhere:6379/4")
    assert HostCeleryExecutor.from_config(config).backend == "redis://elsewhere:6379/4"
