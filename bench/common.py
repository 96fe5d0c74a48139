"""What every benchmark shares: a JSON line out, best-of timing, peak memory, the GEMM peak."""

import json
import resource
import time
from typing import Callable

import torch


def emit(bench: str, **figures) -> None:
    """Print one JSON object: the benchmark's name and its figures (rounded for reading)."""
    out = {"bench": bench, **{k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}}
    print(json.dumps(out), flush=True)


def best_seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    """Fastest of `repeats` calls: the least disturbed by whatever else the machine runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory of this process now: what it still holds, unlike the peak."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def gemm_peak_gflops(n: int = 2048) -> float:
    """fp32 GEMM rate on the current torch threads, measured now, so ratios hold on a noisy host."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2 * n**3 / best_seconds(lambda: a @ b, repeats=5) / 1e9
