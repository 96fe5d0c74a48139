"""`lume-v6 worker`: a dagster-celery worker bound to one queue (Mac4: the default queue, Mac5: training).

It starts only when it can reach what its steps need (the instance, the broker, the capture
and artifact roots), hands back to the queue any step a dead worker left unfinished, says
when it is ready, and stops its whole process tree when it is stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import yaml

from lume_v6_dagster import capacity, deployment
from lume_v6_dagster.resources import default_resources

READY_TIMEOUT = 120.0


def worker_yaml(home: Path, name: str) -> Path:
    """The executor config a worker starts from (`dagster-celery worker start -y`)."""
    path = home / "celery" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"execution": {"config": deployment.celery_config()}}, sort_keys=True))
    return path


def host_capacity(queue: str) -> tuple[str, int]:
    """(pool, slots) this worker's host holds: Mac5 the training pool, from its training host; Mac4 ingest, from its cores.

    The worker runs that many steps at once, and the pool (shared by every host) lets no more in.
    """
    if queue == deployment.TRAINING_QUEUE:
        return capacity.TRAINING_POOL, default_resources()["training_host"].slots()
    return capacity.INGEST_POOL, capacity.ingest_slots()


def restore_orphans(app, queue: str) -> list[str]:
    """Put back on `queue` the steps whose worker died mid-step (unacknowledged, held by no live worker).

    With late acks a running step keeps its message unacknowledged; Redis would hand it out
    again only after the visibility timeout (days). Kombu keeps such messages in the `unacked`
    hash; any of this queue that no live worker holds is an orphan.
    """
    inspect = app.control.inspect(timeout=2)
    held = {task["id"] for part in (inspect.active() or {}, inspect.reserved() or {}) for tasks in part.values() for task in tasks}
    restored = []
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for tag, raw in channel.client.hgetall(channel.unacked_key).items():
            message, _exchange, routing_key = json.loads(raw)
            task_id = message.get("headers", {}).get("id")
            if routing_key == queue and task_id not in held:
                channel.qos.restore_by_tag(tag, channel.client)
                restored.append(task_id)
    return restored


def start(name: str, queue: str, echo=print) -> int:
    """Run the worker in the foreground until it stops; returns its exit code.

    Stopping it (SIGTERM, Ctrl-C) kills its whole process group at once: a step it was running
    goes back to the queue and resumes from its checkpoint on the next worker.
    """
    from dagster_celery.cli import get_app

    home = Path(os.environ["DAGSTER_HOME"])
    config = worker_yaml(home, name)
    app = get_app(str(config))
    pool, slots = host_capacity(queue)
    with dg.DagsterInstance.get() as instance:
        capacity.size_pool(instance, pool, slots)
    for task_id in restore_orphans(app, queue):
        echo(f"re-queued step {task_id}: its worker stopped before finishing it")
    cmd = [str(Path(sys.executable).parent / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app", "-y", str(config),
           "-q", queue, "-n", name, "--", "--concurrency", str(slots)]
    proc = subprocess.Popen(cmd, env={**os.environ, "LUME_WORKER_NAME": name}, process_group=0)  # wrapper, Celery, its child

    def stop_tree(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop_tree)
    full = f"{name}@{socket.gethostname()}"
    deadline = time.time() + READY_TIMEOUT
    while not app.control.ping(destination=[full], timeout=1):
        if proc.poll() is not None:
            return proc.returncode
        if time.time() > deadline:
            stop_tree(signal.SIGTERM, None)
    echo(f"worker {full} ready: queue {queue}, {slots} steps at once (pool {pool}), pid {os.getpid()}, instance {home}")
    return proc.wait()


def launch(name: str, queue: str, env: dict, log: Path, timeout: float = READY_TIMEOUT) -> subprocess.Popen:
    """Start `lume-v6 worker` in a session of its own and return once it says it is ready."""
    cmd = [str(Path(sys.executable).parent / "lume-v6"), "worker", "--name", name, "--queue", queue]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + timeout
    while "ready: queue" not in log.read_text():
        if proc.poll() is not None or time.time() > deadline:
            stop(proc)
            raise RuntimeError(f"worker {name} did not get ready; see {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a launched worker and its tree (SIGTERM: it kills its tree), SIGKILL if it does not exit."""
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
