"""Full scale: 30 tracks x 15 min through the whole chain, full profile, serial and parallel side by side.

Each plan runs the demo path (real Dagster jobs) in a process of its own, on a fresh instance
and artifact root, over the same simulated captures: `serial` ingests one track, then trains
one model at a time, all in one process (`lume-v6 demo --serial`); `parallel` is `lume-v6 demo`
(pools sized from this host). Per plan: wall time per stage, the machine's mean CPU use over
the plan (100% = one core busy; run it on an otherwise idle machine), the peak memory of the
plan's process tree (RSS summed over its processes: an upper bound, shared pages count in each)
and each model's weights sha256, which must not depend on the plan.
  make bench ARGS="full_scale"                                      # both plans, ~80 min here
  . scripts/env.sh && python -m bench.full_scale --root DIR          # --root keeps the outputs
  python -m bench.full_scale --tracks 30 --minutes 3 --profile demo  # what `make demo` runs
(MLX runs on OpenBLAS, lume_v6_dagster/blas.py: on the wheel's own BLAS san_v6 alone takes ~12 min here.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import dagster as dg
import psutil

from bench.common import emit

PLANS = ("serial", "parallel")
MODELS = ("san_v6", "encoder_flow_v6", "v5_baseline")


def _stage_seconds(instance: dg.DagsterInstance) -> dict[str, float]:
    """Ingest as wall time (first start to last end) and summed over runs; each step of the training run on its own."""
    ingest = [instance.get_run_stats(r.run_id) for r in instance.get_runs(dg.RunsFilter(job_name="ingest_track"))]
    stages = {"ingest_wall": max(s.end_time for s in ingest) - min(s.start_time for s in ingest),
              "ingest_summed": sum(s.end_time - s.start_time for s in ingest)}
    (train,) = instance.get_runs(dg.RunsFilter(job_name="train"), limit=1)
    stats = instance.get_run_stats(train.run_id)
    stages["train_run_wall"] = stats.end_time - stats.start_time
    for step in instance.get_run_step_stats(train.run_id):
        stages[step.step_key] = step.end_time - step.start_time
    return stages


class TreeMemory:
    """Samples the summed RSS of this process and its descendants; keeps the peak."""

    def __init__(self, every: float = 0.5):
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self.every):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:  # ended between the listing and the read
                    pass
            self.peak = max(self.peak, total)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()


def run_plan(root: Path, plan: str, tracks: int, minutes: float, profile: str) -> dict:
    """One plan on the captures under root/captures, in this process; its figures."""
    for name, path in (("DAGSTER_HOME", root / plan / "dagster_home"), ("LUME_CAPTURE_ROOT", root / "captures"),
                       ("LUME_ARTIFACT_ROOT", root / plan / "artifacts")):
        os.environ[name] = str(path)
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    from lume_v6_dagster import demo

    busy_before, start = _busy_seconds(), time.perf_counter()
    with TreeMemory() as memory:
        demo.run(tracks, minutes, profile, seed=0, echo=lambda line: click.echo(line, err=True), serial=plan == "serial")
    wall = time.perf_counter() - start
    with dg.DagsterInstance.get() as instance:
        weights = {m: instance.get_latest_materialization_event(dg.AssetKey(m)).asset_materialization.metadata["weights_sha256"].value
                   for m in MODELS}
        stages = _stage_seconds(instance)
    return {"minutes": round(wall / 60, 2), "cpu_percent": round(100 * (_busy_seconds() - busy_before) / wall, 1),
            "peak_tree_rss_mb": round(memory.peak / 2**20),
            "stage_seconds": {k: round(v, 1) for k, v in stages.items()}, "weights_sha256": weights}


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (every core, since boot)."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)


@click.command()
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), help="Empty folder for captures, artifacts, instances [a temporary one].")
@click.option("--tracks", default=30, show_default=True)
@click.option("--minutes", default=15.0, show_default=True)
@click.option("--profile", default="full", show_default=True)
@click.option("--plans", default=",".join(PLANS), show_default=True, help="Which plans, in this order.")
@click.option("--one-plan", type=click.Choice(PLANS), hidden=True, help="Internal: run one plan in this process, print its JSON.")
def main(root: Path | None, tracks: int, minutes: float, profile: str, plans: str, one_plan: str | None) -> None:
    if one_plan:
        click.echo(json.dumps(run_plan(root, one_plan, tracks, minutes, profile)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        _compare((root or Path(tmp)).resolve(), tracks, minutes, profile, plans.split(","))


def _compare(root: Path, tracks: int, minutes: float, profile: str, plans: list[str]) -> None:
    from lume_v6_dagster.simulate import simulate

    start = time.perf_counter()
    simulate(tracks, minutes, root / "captures", seed=0)
    figures = {"simulate_seconds": round(time.perf_counter() - start, 1)}
    results = {}
    for plan in plans:  # each in a fresh process: its own memory peak, its own step servers
        done = subprocess.run([sys.executable, "-m", "bench.full_scale", "--one-plan", plan, "--root", str(root), "--tracks", str(tracks),
                               "--minutes", str(minutes), "--profile", profile], stdout=subprocess.PIPE, text=True)
        if done.returncode:
            raise SystemExit(f"plan {plan} failed (exit {done.returncode})")
        results[plan] = json.loads(done.stdout.strip().splitlines()[-1])
    if set(PLANS) <= set(results):
        serial, parallel = results["serial"], results["parallel"]
        figures.update(parallel_to_serial=parallel["minutes"] / serial["minutes"],
                       weights_identical=serial["weights_sha256"] == parallel["weights_sha256"])
    emit("full_scale", tracks=tracks, minutes_per_track=minutes, profile=profile, cores=psutil.cpu_count(),
         total_minutes=sum(r["minutes"] for r in results.values()), **figures, plans=results)


if __name__ == "__main__":
    main()
