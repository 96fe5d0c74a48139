"""Loading the code location fails here, in one obvious place, on any wiring mistake."""

from lume_v6_dagster.definitions import defs


def test_definitions_load():
    repo = defs.get_repository_def()
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} >= {"raw_capture", "validated_capture", "track_pairs"}
    assert defs.resolve_job_def("ingest_track").partitions_def.name == "tracks"
    assert defs.resolve_sensor_def("capture_sensor")
