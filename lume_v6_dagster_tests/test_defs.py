"""Loading the code location fails here, in one obvious place, on any wiring mistake."""

from lume_v6_dagster import capacity
from lume_v6_dagster.definitions import defs


def test_definitions_load():
    repo = defs.get_repository_def()
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} >= {"raw_capture", "validated_capture", "track_pairs"}
    assert defs.resolve_job_def("ingest_track").partitions_def.name == "tracks"
    assert defs.resolve_sensor_def("capture_sensor")


def test_each_heavy_step_claims_a_slot_of_its_hosts_pool():
    """Ingest and training steps wait for a slot of the pool their host sized (lume_v6_dagster/capacity.py)."""
    pools = {k.to_user_string(): defs.get_assets_def(k).op.pool for k in defs.get_repository_def().asset_graph.get_all_asset_keys()}
    assert {k for k, p in pools.items() if p == capacity.INGEST_POOL} == {"raw_capture", "validated_capture", "track_pairs"}
    assert {k for k, p in pools.items() if p == capacity.TRAINING_POOL} == {"san_v6", "encoder_flow_v6", "v5_baseline"}


def test_runs_the_ui_or_schedule_launch_fork_their_steps_from_a_server_that_imported_the_code_once():
    """A fresh interpreter per step re-imported torch, MLX and coremltools: 10-20 s a step on 2 cores. A run
    config that names a start method still gets it. A track's ingest (the sensor's runs) needs no server at all:
    its steps follow one another in the run's own process."""
    assert defs.resolve_job_def("ingest_track").executor_def.name == "in_process"
    forkserver = {"forkserver": {"preload_modules": ["lume_v6_dagster.definitions"]}}
    for job in ("train", "release", "judge"):
        executor = defs.resolve_job_def(job).executor_def
        assert executor.name == "multiprocess"
        assert executor.config_schema.resolve_config({}).value["config"]["start_method"] == forkserver
    chosen = executor.config_schema.resolve_config({"config": {"max_concurrent": 2, "start_method": {"spawn": {}}}}).value["config"]
    assert chosen["start_method"] == {"spawn": {}} and chosen["max_concurrent"] == 2
