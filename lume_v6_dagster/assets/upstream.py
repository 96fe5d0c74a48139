"""What an upstream asset recorded: downstream assets read provenance, they never re-derive it.

Paths, profile, seed and dataset fingerprint travel in materialization metadata, so a release
under another environment, or a step queued behind a newer split, uses what was trained.
"""

import dagster as dg


def _values(event) -> dict:
    return {"run_id": event.run_id, **{k: v.value for k, v in event.asset_materialization.metadata.items()}}


def _in_run(context: dg.AssetExecutionContext, key: str, run_id: str) -> list:
    """`key`'s materialization events in run `run_id`, oldest first."""
    return [e for e in context.instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            if e.asset_materialization.asset_key == dg.AssetKey(key)]


def recorded(context: dg.AssetExecutionContext, key: str) -> dict:
    """Metadata values of `key`'s materialization in this run if there is one, else its latest."""
    events = _in_run(context, key, context.run.run_id)
    event = events[-1] if events else context.instance.get_latest_materialization_event(dg.AssetKey(key))
    if event is None:
        raise dg.Failure(f"{key} has never been materialized: materialize it before {context.asset_key.to_user_string()}")
    return _values(event)


def recorded_in_run(context: dg.AssetExecutionContext, key: str, run_id: str) -> dict:
    """Metadata of `key`'s materialization in run `run_id` (a report names the run that exported what it judged)."""
    if not (events := _in_run(context, key, run_id)):
        raise dg.Failure(f"run {run_id} did not materialize {key}")
    return _values(events[-1])


def recorded_where(context: dg.AssetExecutionContext, key: str, wanted, what: str, limit: int = 50) -> dict:
    """The newest materialization of `key` (this run's first) whose metadata satisfies `wanted`."""
    candidates = [_values(e) for e in reversed(_in_run(context, key, context.run.run_id))]
    candidates += [_values(r) for r in context.instance.fetch_materializations(dg.AssetKey(key), limit=limit).records]
    for values in candidates:
        if wanted(values):
            return values
    raise dg.Failure(f"no {key} of {what}: materialize {key}, then {context.asset_key.to_user_string()}")
