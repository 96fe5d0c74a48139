"""How many steps a host runs at once, and the Dagster pools that follow it.

A pool is an instance-wide count of slots. The commands that start a host set the pool of the
steps it runs from what that host has: the demo and `lume-v6 pools` (one machine) both pools,
each `lume-v6 worker` (two hosts) the pool of its queue. Training follows the training host
(its cores over the threads each model uses, or every model at once on a GPU); ingest follows
the cores. Parallel steps change no weights: each model trains in its own process, seeded alone.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, Future, ThreadPoolExecutor

import dagster as dg

TRAINING_POOL = "training"
INGEST_POOL = "ingest"
TRAINING_STEPS = 3  # san_v6, encoder_flow_v6, v5_baseline: a fourth slot would stay idle
# encoder_flow_v6 is the chain's critical path; the steps beside it train at this niceness (CFS
# weight 110 against its 1024), so they take the core time it leaves rather than half of its own.
BESIDE_THE_CRITICAL_PATH = 10


def cores() -> int:
    """Cores this process may run on (a container's or taskset's share, not the whole machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def overlap() -> bool:
    """Whether a step may compute beside its own thread (`LUME_TRAINING_OVERLAP`, default 1; `lume-v6 demo --serial` sets 0)."""
    return os.environ.get("LUME_TRAINING_OVERLAP", "1") != "0"


class Inline(Executor):
    """Computes what is submitted at once, in the caller's thread: a step on one core."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def threads_beside(enabled: bool, n: int = 0, name: str = "beside") -> Executor:
    """`n` threads (0: one per core) for a step's work beside its own thread; not `enabled`, the caller's thread
    computes it all, in turn. Each result is computed alone, so it does not depend on which."""
    return ThreadPoolExecutor(n or cores(), thread_name_prefix=name) if enabled else Inline()


def training_slots(parallel: int, threads: int, device: str, n_cores: int) -> int:
    """Training steps at once: `parallel` if set, else what the device holds.

    On a CPU each model needs `threads` cores (0 = all of them); a GPU is shared by every model,
    with a core left for each one's data.
    """
    if parallel:
        return parallel
    if device != "cpu":
        return max(1, min(TRAINING_STEPS, n_cores))
    return max(1, min(TRAINING_STEPS, n_cores // (threads or n_cores)))


def helper_processes() -> int:
    """Processes a step may start for its own work: one per core, none inside a daemonic process
    (a Celery worker's pool process), which Python does not let have children."""
    return 1 if multiprocessing.current_process().daemon else cores()


def beside_the_critical_path() -> int:
    """Lower this step's CPU priority, where it has a process of its own (the multiprocess executor's,
    which ends with the step); returns the niceness it now runs at. In this process (the serial demo,
    tests) or a Celery pool process (which runs other steps next) the priority stays as it is."""
    me = multiprocessing.current_process()
    if me.name != "MainProcess" and not me.daemon:
        for thread in _threads():
            os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + BESIDE_THE_CRITICAL_PATH)
    return os.getpriority(os.PRIO_PROCESS, 0)


def _threads() -> list[int]:
    """Every thread of this process: Linux gives each its own priority (MLX computes on threads it started
    at import); elsewhere the process's is theirs."""
    return [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]


def ingest_slots() -> int:
    """Tracks ingested at once: one per core (a 15-minute track peaks at ~1.4 GB, bench/README.md)."""
    return int(os.environ.get("LUME_INGEST_PARALLEL") or cores())


def size_pool(instance: dg.DagsterInstance, pool: str, slots: int) -> int:
    """Give `pool` this many slots on the instance (shared by every host of a deployment)."""
    instance.event_log_storage.set_concurrency_slots(pool, slots)
    return slots


def size_host_pools(instance: dg.DagsterInstance, training: int, serial: bool = False) -> dict[str, int]:
    """One machine: this host sizes both pools, ingest from its cores (`serial`: one slot each)."""
    wanted = {INGEST_POOL: ingest_slots(), TRAINING_POOL: training}
    return {pool: size_pool(instance, pool, 1 if serial else n) for pool, n in wanted.items()}


def pool_limit(instance: dg.DagsterInstance, pool: str) -> int | None:
    """The pool's slot count as the instance has it, or None before anyone sized it."""
    return next((p.limit for p in instance.event_log_storage.get_pool_limits() if p.name == pool and not p.from_default), None)
