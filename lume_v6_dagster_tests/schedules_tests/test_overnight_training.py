"""The overnight schedule: trains on new data, retries an unfinished training a bounded number of times."""

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRun

from lume_v6_dagster import code_version
from lume_v6_dagster.schedules import MAX_ATTEMPTS, MODELS, RELEASE_STEPS, TRAINED, overnight_training


def evaluate(instance):
    return overnight_training(dg.build_schedule_context(instance=instance))


def materialize_event(instance, key, partition=None, metadata=None):
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition, metadata=metadata))


def train_run(instance, status):
    instance.add_run(DagsterRun(job_name="train", status=status))


def test_skips_without_data_then_runs_with_new_track_then_skips_after_training():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("tracks", ["s01-sky-garden", "s02-turquoise-alcove"])
        first = evaluate(instance)
        assert isinstance(first, dg.SkipReason) and "no validated track" in first.skip_message

        materialize_event(instance, "track_pairs", "s01-sky-garden")
        assert evaluate(instance).tags["lume/trigger"] == "new validated tracks"

        for key in ("dataset_split", *TRAINED):
            materialize_event(instance, key)
        skipped = evaluate(instance)
        assert isinstance(skipped, dg.SkipReason) and "since the last training" in skipped.skip_message

        materialize_event(instance, "track_pairs", "s02-turquoise-alcove")
        assert isinstance(evaluate(instance), dg.RunRequest)


def test_models_another_model_code_made_are_retrained_on_the_same_data():
    """The demo and the nightly run said "up to date" after a change to the model code, and shipped the old models."""
    with dg.instance_for_test() as instance:
        materialize_event(instance, "track_pairs", "s01-sky-garden")
        materialize_event(instance, "dataset_split")
        for key in TRAINED:
            materialize_event(instance, key, metadata={"code_version": "0d1ad0fceb27"} if key in MODELS else None)
        request = evaluate(instance)
        assert isinstance(request, dg.RunRequest)
        assert request.tags["lume/trigger"].startswith("model code changed: san_v6 made by 0d1ad0fceb27")
        assert code_version.model_code_version() in request.tags["lume/trigger"]
        for key in TRAINED:
            materialize_event(instance, key, metadata={"code_version": code_version.model_code_version()} if key in MODELS else None)
        assert isinstance(evaluate(instance), dg.SkipReason)


def test_a_verdict_another_judging_code_gave_is_judged_again_without_retraining():
    """A change to the gates left the old report standing: `make demo` and the nightly run said "up to date"."""
    with dg.instance_for_test() as instance:
        materialize_event(instance, "track_pairs", "s01-sky-garden")
        materialize_event(instance, "dataset_split")
        for key in TRAINED:
            materialize_event(instance, key, metadata={"code_version": code_version.model_code_version()} if key in MODELS else None)
        materialize_event(instance, "acceptance_report", metadata={"judging_code_version": "0d1ad0fceb27"})
        request = evaluate(instance)
        assert isinstance(request, dg.RunRequest) and request.asset_selection == RELEASE_STEPS
        released = {"coreml_packages", "smoke_test", "listening_previews", "acceptance_report", "release_bundle"}
        assert set(request.asset_selection) == {dg.AssetKey(k) for k in released}  # no model retrained
        assert request.tags["lume/trigger"] == ("judging code changed: the acceptance report was judged by 0d1ad0fceb27, "
                                                f"this checkout is {code_version.judging_code_version()}")
        materialize_event(instance, "acceptance_report", metadata={"judging_code_version": code_version.judging_code_version()})
        assert isinstance(evaluate(instance), dg.SkipReason)


def test_a_failed_training_is_retried_at_most_max_attempts_times():
    """A step failed after dataset_split: later nights retry instead of skipping forever."""
    with dg.instance_for_test() as instance:
        materialize_event(instance, "track_pairs", "s01-sky-garden")
        materialize_event(instance, "dataset_split")
        materialize_event(instance, "san_v6")  # encoder_flow_v6 failed, so nothing was released
        train_run(instance, dg.DagsterRunStatus.FAILURE)
        retry = evaluate(instance)
        assert isinstance(retry, dg.RunRequest), retry
        assert "training incomplete: encoder_flow_v6, v5_baseline, release_bundle" in retry.tags["lume/trigger"]
        assert retry.tags["lume/attempt"] == f"2 of {MAX_ATTEMPTS}"

        train_run(instance, dg.DagsterRunStatus.STARTED)
        busy = evaluate(instance)
        assert isinstance(busy, dg.SkipReason) and "is still STARTED" in busy.skip_message

        for _ in range(MAX_ATTEMPTS):
            train_run(instance, dg.DagsterRunStatus.FAILURE)
        instance.delete_run(instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))[0].run_id)
        given_up = evaluate(instance)
        assert isinstance(given_up, dg.SkipReason)
        assert f"failed {MAX_ATTEMPTS + 1} times on this data" in given_up.skip_message and "encoder_flow_v6" in given_up.skip_message

        materialize_event(instance, "track_pairs", "s02-turquoise-alcove")  # new data: attempts count again
        assert evaluate(instance).tags["lume/attempt"] == f"1 of {MAX_ATTEMPTS}"


def test_runs_at_one_in_the_configured_timezone():
    assert overnight_training.cron_schedule == "0 1 * * *"
    assert overnight_training.execution_timezone
