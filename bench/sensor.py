"""Sensor: one capture_sensor tick over 100, 1,000 and 10,000 capture folders already known,
with nothing new and with one new complete folder. Goal: <= 1 s at 10,000, growing with what
changed, not with what exists. Folders are hard links to one short simulated capture; all
but the latest are older than the scan's lookback window, as on a capture disk in use.
  python -m bench.sensor
"""

import os
import tempfile
import time
from pathlib import Path

import click
import dagster as dg

from bench.common import emit


def tick(instance, resources, cursor):
    """One evaluation, timed, then its partition requests applied as the daemon would."""
    from lume_v6_dagster.partitions import tracks
    from lume_v6_dagster.sensors import capture_sensor

    start = time.perf_counter()
    result = capture_sensor(dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources))
    seconds = time.perf_counter() - start
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(tracks.name, list(req.partition_keys))
    return result, seconds


def _link_folder(template: Path, target: Path) -> None:
    target.mkdir()
    for f in template.iterdir():
        os.link(f, target / f.name)


def _measure(n: int, template: Path, tmp: Path) -> dict:
    from lume_v6_dagster.capture.scan import LOOKBACK_SECONDS
    from lume_v6_dagster.resources import ArtifactStore, CaptureStore

    root = tmp / f"captures-{n}"
    root.mkdir()
    for i in range(n - 1):
        _link_folder(template, root / f"t{i:05d}")
    # Steady state: only the latest folder is within the scan's lookback of its watermark.
    time.sleep(LOOKBACK_SECONDS + 1)
    _link_folder(template, root / f"t{n - 1:05d}")
    resources = {"capture_store": CaptureStore(root=str(root), settle_seconds=0),
                 "artifact_store": ArtifactStore(root=str(tmp / f"artifacts-{n}"))}
    with dg.instance_for_test() as instance:
        first, cold = tick(instance, resources, None)  # every folder new: opens all n
        idle, idle_s = tick(instance, resources, first.cursor)
        _link_folder(template, root / "new-track")
        one, one_s = tick(instance, resources, idle.cursor)
    assert len(first.run_requests) == n and not idle.run_requests and len(one.run_requests) == 1
    return {"folders": n, "first_tick_s": round(cold, 4), "idle_tick_s": round(idle_s, 4), "one_new_tick_s": round(one_s, 4)}


@click.command()
@click.option("--counts", default="100,1000,10000", show_default=True)
def main(counts: str) -> None:
    from lume_v6_dagster.simulate import simulate

    sizes = [int(n) for n in counts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        (template,) = simulate(1, 0.05, Path(tmp) / "template", seed=0, workers=1)
        rows = [_measure(n, template, Path(tmp)) for n in sizes]
    emit("sensor", ticks=rows, one_new_growth_first_to_last=rows[-1]["one_new_tick_s"] / rows[0]["one_new_tick_s"],
         folders_growth=sizes[-1] / sizes[0], goal_one_new_s_at_largest=1.0)


if __name__ == "__main__":
    main()
