"""Simulator: minutes of capture written per second (all cores), and per core.
  python -m bench.simulator                      # 30 tracks x 15 min (~40 s here)
"""

import os
import tempfile
import time
from pathlib import Path

import click

from bench.common import emit


@click.command()
@click.option("--tracks", default=30, show_default=True)
@click.option("--minutes", default=15.0, show_default=True)
def main(tracks: int, minutes: float) -> None:
    from lume_v6_dagster.simulate import simulate

    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        simulate(tracks, minutes, Path(tmp), seed=0, workers=workers)
        seconds = time.perf_counter() - start
    rate = tracks * minutes / seconds
    emit("simulator", tracks=tracks, minutes_per_track=minutes, workers=workers, seconds=seconds,
         capture_minutes_per_s=rate, capture_minutes_per_s_per_core=rate / workers)


if __name__ == "__main__":
    main()
