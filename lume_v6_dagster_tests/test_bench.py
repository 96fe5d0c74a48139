"""Each benchmark runs at tiny sizes and prints one JSON object with its figures.

No timings are asserted (the machine is shared); only that the figures exist, are sane
and say what they compare against.
"""

import dataclasses
import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RATIOS = {
    "simulator": ["capture_minutes_per_s_per_core"],
    "pairs": ["ratio_to_floor", "memory_growth"],
    "training": ["flow_fraction_of_gemm_peak", "san_mlx_to_torch_ratio"],
    "inference": ["ratio_floor_to_measured", "frozen_graph_ms", "floor_ms"],
    "sensor": ["one_new_growth_first_to_last"],
    "increment": ["ratio_increment_to_full"],
    "full_scale": ["total_minutes", "parallel_to_serial"],
    "one_step": ["fd_samples", "mode_accuracy_real_music"],
    "two_host": ["chain_celery_s", "chain_in_process_s", "speedup_2_workers"],
}


@functools.cache
def run_bench(name: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bench", name, "--quick"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


@pytest.mark.parametrize("name", list(RATIOS))
def test_bench_prints_its_figures(name):
    out = run_bench(name)
    assert out["bench"] == name
    for key in RATIOS[name]:
        assert math.isfinite(out[key]) and out[key] > 0, (key, out)


def test_bench_sizes_and_peers_are_reported():
    pairs = run_bench("pairs")  # cached: the run above
    assert set(pairs["peak_rss_mb_by_tracks"]) == {"1", "2"}
    assert pairs["floor_frames_per_s"] > 0 and pairs["goal_ratio"] == 0.5


def test_one_step_ablation_reports_every_variant_with_v5():
    out = run_bench("one_step")
    table = {row["variant"]: row for row in out["table"]}
    assert set(table) == {"today", "ema+warmup+distill8@0.05"}
    for row in table.values():
        assert row["fd_1step"][0] > 0 and row["fd_ratio"][0] > 0 and row["v5_val_loss"] > 0
        assert row["lag1_gap"][0] == pytest.approx(row["lag1"][0] - row["lag1_real"][0], abs=2e-4)
        assert row["lag1_gap_lo"][0] < row["lag1_gap_hi"][0]
    assert out["draws"] == 2 and out["fit_windows"] == 1  # the figures over time: the mean of two draws; tiny's fit windows


def test_the_shipped_recipe_is_the_ablation_variant_it_names():
    """The report names the recipe by its ablation variant: that variant must be what trains."""
    from bench.one_step import LEVERS, TODAY
    from lume_v6_dagster.training.flow_training import RECIPE_NAME, Recipe

    assert dataclasses.replace(Recipe(), **{**TODAY, **LEVERS[RECIPE_NAME]}) == Recipe()


def test_full_scale_runs_both_plans_with_the_same_weights():
    out = run_bench("full_scale")  # cached: the run above
    assert set(out["plans"]) == {"serial", "parallel"} and out["weights_identical"] is True
    for plan in out["plans"].values():
        assert plan["cpu_percent"] > 0 and plan["peak_tree_rss_mb"] > 0 and plan["stage_seconds"]["encoder_flow_v6"] > 0


def test_unknown_bench_is_refused():
    done = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and "nope" in done.stderr
