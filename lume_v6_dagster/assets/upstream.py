"""What an upstream asset recorded: downstream assets read provenance, they never re-derive it.

Paths, profile, seed and dataset fingerprint travel in materialization metadata, so a release
under another environment, or a step queued behind a newer split, uses what was trained.
"""

import dagster as dg


def recorded(context: dg.AssetExecutionContext, key: str) -> dict:
    """Metadata values of `key`'s materialization in this run if there is one, else its latest."""
    asset_key = dg.AssetKey(key)
    events = [e for e in context.instance.all_logs(context.run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
              if e.asset_materialization.asset_key == asset_key]
    event = events[-1] if events else context.instance.get_latest_materialization_event(asset_key)
    if event is None:
        raise dg.Failure(f"{key} has never been materialized: materialize it before {context.asset_key.to_user_string()}")
    return {"run_id": event.run_id, **{k: v.value for k, v in event.asset_materialization.metadata.items()}}
