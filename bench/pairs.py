"""Pairs build: frames/s in one process (one core) against the floor of its unavoidable work,
and memory for 1, 10 and 30 tracks, which must stay flat in the track count: the peak is
that of the largest single track, and what is held after the last track must not grow.

The floor is only loading the dynamics NPZ and computing the mel/controls features for the
same audio; the build adds validation (pandera), windowing and the atomic NPZ write.
  python -m bench.pairs                         # 1/10/30 tracks x 15 min (~6 min here)
  python -m bench.pairs --counts 1,2 --minutes 0.2
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from bench.common import emit, peak_rss_mb, rss_mb


def _build(folders: list[Path], out: Path) -> dict:
    """Build pairs for each folder in turn (as the ingest job does) and time the floor too."""
    from lume_v6_dagster import contract, pairs
    from lume_v6_dagster.capture import audio
    from lume_v6_dagster.capture.folder import load_capture

    pairs.audio_features(np.zeros(contract.SAMPLE_RATE, np.float32), pairs.PairsConfig().hop)  # warm librosa/numba caches
    frames, build_s, floor_s = 0, 0.0, 0.0
    for folder in folders:
        start = time.perf_counter()
        cap = load_capture(folder)
        pairs.write_pairs(out / f"{cap.track_id}.npz", pairs.build_pairs(cap))
        build_s += time.perf_counter() - start
        start = time.perf_counter()
        with np.load(folder / "dynamics.npz") as z:
            z["t"], z["dynamics"], z["confidence"]
        pairs.audio_features(audio.load_mono(folder / audio.FILE), pairs.PairsConfig().hop)
        floor_s += time.perf_counter() - start
        frames += len(cap.arrays.t)
    return {"tracks": len(folders), "frames": frames, "build_s": build_s, "floor_s": floor_s, "peak_rss_mb": peak_rss_mb(), "rss_after_mb": rss_mb()}


@click.command()
@click.option("--counts", default="1,10,30", show_default=True, help="Track counts, each built in a fresh process.")
@click.option("--minutes", default=15.0, show_default=True)
@click.option("--captures", type=click.Path(path_type=Path), hidden=True)
@click.option("--limit", type=int, hidden=True)
def main(counts: str, minutes: float, captures: Path | None, limit: int | None) -> None:
    if captures:  # the child: build `limit` tracks, report one JSON line
        with tempfile.TemporaryDirectory() as out:
            print(json.dumps(_build(sorted(p for p in captures.iterdir() if p.is_dir())[:limit], Path(out))))
        return
    from lume_v6_dagster.simulate import simulate

    sizes = [int(n) for n in counts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        simulate(max(sizes), minutes, Path(tmp), seed=0)
        runs = [json.loads(subprocess.run([sys.executable, "-m", "bench.pairs", "--captures", tmp, "--limit", str(n)],
                                          check=True, capture_output=True, text=True).stdout.splitlines()[-1]) for n in sizes]
    last = runs[-1]
    emit("pairs", minutes_per_track=minutes, frames_per_s_per_core=last["frames"] / last["build_s"],
         floor_frames_per_s=last["frames"] / last["floor_s"], ratio_to_floor=last["floor_s"] / last["build_s"], goal_ratio=0.5,
         peak_rss_mb_by_tracks={r["tracks"]: round(r["peak_rss_mb"]) for r in runs},
         retained_rss_mb_by_tracks={r["tracks"]: round(r["rss_after_mb"]) for r in runs},
         memory_growth=last["peak_rss_mb"] / runs[0]["peak_rss_mb"])


if __name__ == "__main__":
    main()
