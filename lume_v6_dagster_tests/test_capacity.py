"""How many steps a host runs at once, and the pools that follow it."""

import multiprocessing
import os

import dagster as dg
import pytest
import torch

from lume_v6_dagster import capacity, deployment
from lume_v6_dagster.atomic_files import save_torch
from lume_v6_dagster.checksums import sha256_file


@pytest.mark.parametrize("parallel, threads, device, cores, slots", [
    (0, 1, "cpu", 2, 2),  # this machine: V5 and SAN share the core the V6 encoder + flow leaves
    (0, 1, "cpu", 1, 1),
    (0, 1, "cpu", 12, 3),  # never more than the three training steps
    (0, 4, "cpu", 12, 3),
    (0, 4, "cpu", 8, 2),  # each model takes four cores
    (0, 0, "cpu", 8, 1),  # threads 0: one model takes every core
    (0, 1, "mps", 10, 3),  # one GPU, shared by every model
    (0, 1, "cuda", 2, 2),  # ... with a core for each one's data
    (2, 1, "cpu", 12, 2),  # set by the host: LUME_TRAINING_PARALLEL
])
def test_training_slots_follow_the_device_cores_and_threads(parallel, threads, device, cores, slots):
    assert capacity.training_slots(parallel, threads, device, cores) == slots


def test_a_sized_pool_is_what_the_instance_lets_run(tmp_path):
    home = deployment.prepare_instance_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert capacity.pool_limit(instance, capacity.TRAINING_POOL) is None  # the instance default (1) until a host sizes it
        capacity.size_pool(instance, capacity.TRAINING_POOL, 2)
        assert capacity.pool_limit(instance, capacity.TRAINING_POOL) == 2


def test_saved_weights_are_the_same_bytes_every_time(tmp_path):
    """torch names its archive after the file it writes to; the temporary name of an atomic write must not reach the bytes."""
    state = {"w": torch.arange(6.0).reshape(2, 3)}
    save_torch(tmp_path / "a" / "model.pt", state)
    save_torch(tmp_path / "b" / "model.pt", state)
    assert sha256_file(tmp_path / "a" / "model.pt") == sha256_file(tmp_path / "b" / "model.pt")
    assert torch.equal(torch.load(tmp_path / "a" / "model.pt", weights_only=True)["w"], state["w"])


def _helpers_in_a_daemon(out):
    out.put(capacity.helper_processes())


def test_a_step_inside_a_daemonic_worker_process_starts_no_helpers():
    """A Celery worker runs steps in daemonic processes, which may not start their own (the previews
    once failed there with "daemonic processes are not allowed to have children")."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_helpers_in_a_daemon, args=(out,), daemon=True)
    proc.start()
    assert out.get(timeout=60) == 1
    proc.join()
    assert capacity.helper_processes() == capacity.cores()


def _niced_threads(queue):
    """In a process of its own: a thread started before the call (as MLX starts its own at import) is lowered too."""
    import threading

    started, stop = threading.Event(), threading.Event()
    threading.Thread(target=lambda: (started.set(), stop.wait())).start()
    started.wait()
    niceness = capacity.beside_the_critical_path()
    queue.put((niceness, sorted(os.getpriority(os.PRIO_PROCESS, t) for t in capacity._threads())))
    stop.set()


def test_a_step_beside_the_critical_path_lowers_every_thread_of_its_own_process_only():
    now = os.getpriority(os.PRIO_PROCESS, 0)
    assert capacity.beside_the_critical_path() == now  # this process (a test, the serial demo) keeps its priority
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_niced_threads, args=(queue,))
    child.start()
    niceness, threads = queue.get(timeout=60)
    child.join()
    lowered = now + capacity.BESIDE_THE_CRITICAL_PATH
    assert niceness == lowered and threads == [lowered, lowered]
