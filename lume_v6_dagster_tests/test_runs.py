"""How a launched run's steps and the demo's track processes start."""

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
