"""The overnight schedule skips (with the reason) unless a new validated track landed."""

import dagster as dg

from lume_v6_dagster.schedules import overnight_training


def evaluate(instance):
    return overnight_training(dg.build_schedule_context(instance=instance))


def materialize_event(instance, key, partition=None):
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


def test_skips_without_data_then_runs_with_new_track_then_skips_after_training():
    with dg.instance_for_test() as instance:
        _scenario(instance)


def _scenario(instance):
    instance.add_dynamic_partitions("tracks", ["s01-sky-garden", "s02-turquoise-alcove"])
    first = evaluate(instance)
    assert isinstance(first, dg.SkipReason) and "no validated track" in first.skip_message

    materialize_event(instance, "track_pairs", "s01-sky-garden")
    assert isinstance(evaluate(instance), dg.RunRequest)

    materialize_event(instance, "dataset_split")
    skipped = evaluate(instance)
    assert isinstance(skipped, dg.SkipReason) and "since the last training" in skipped.skip_message

    materialize_event(instance, "track_pairs", "s02-turquoise-alcove")
    assert isinstance(evaluate(instance), dg.RunRequest)


def test_runs_at_one_in_the_configured_timezone():
    assert overnight_training.cron_schedule == "0 1 * * *"
    assert overnight_training.execution_timezone
