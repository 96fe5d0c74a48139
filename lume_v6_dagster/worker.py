"""`lume-v6 worker`: a dagster-celery worker bound to one queue (Mac4: the default queue, Mac5: training).

It starts only when it can reach what its steps need (the instance, the broker, the capture
and artifact roots), hands back to the queue any step its own predecessor left unfinished,
says when it is ready, and stops its whole process tree when it is stopped. It runs the app
of `lume_v6_dagster.celery_app`, configured from the environment: no file holds the broker URL.
"""

from __future__ import annotations

import base64
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

from lume_v6_dagster import capacity, deployment
from lume_v6_dagster.resources import default_resources

READY_TIMEOUT = 120.0
# Worker-to-worker chatter nothing here uses (terminations are re-sent until they land, celery_app._end_with_run).
# With Redis, a worker reconnecting after a broker restart can stop consuming for good (celery#8030, #8091);
# Celery 5.7 fails to restart gossip there ("Error on restarting Gossip").
WITHOUT = ("--without-gossip", "--without-mingle", "--without-heartbeat")


def host_capacity(queue: str) -> tuple[str, int]:
    """(pool, slots) this worker's host holds: Mac5 the training pool, from its training host; Mac4 ingest, from its cores.

    The worker runs that many steps at once, and the pool (shared by every host) lets no more in.
    """
    if queue == deployment.TRAINING_QUEUE:
        return capacity.TRAINING_POOL, default_resources()["training_host"].slots()
    return capacity.INGEST_POOL, capacity.ingest_slots()


def restore_orphans(app, instance: dg.DagsterInstance, queue: str, me: str) -> list[str]:
    """Put back on `queue` the steps that this worker's predecessor (same name and host) died holding.

    With late acks a running step keeps its message unacknowledged; Redis would hand it out
    again only after the visibility timeout (days). Kombu keeps such messages in its `unacked`
    hash. Which worker holds one is read from the instance (the step's last "Executing steps"
    event), not from who answers a broadcast: a busy or paused worker may not answer in time,
    and a step it still runs must never run twice. A message whose run has ended (its
    acknowledgement was lost, e.g. while the broker restarted) is deleted, not handed out.
    Returns what it did, one line per message.
    """
    done = []
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for tag, raw in channel.client.hgetall(channel.unacked_key).items():
            message, _exchange, routing_key = json.loads(raw)
            if routing_key != queue:
                continue
            args = step_args(message)
            if holder(instance, args) != me:
                continue
            task_id, run = message.get("headers", {}).get("id"), instance.get_run_by_id(args.run_id)
            if run is None or run.is_finished:
                channel.client.pipeline().zrem(channel.unacked_index_key, tag).hdel(channel.unacked_key, tag).execute()
                done.append(f"dropped step {task_id}: its run {args.run_id} has ended")
            else:
                channel.qos.restore_by_tag(tag, channel.client)
                done.append(f"re-queued step {task_id}: {me} stopped before finishing it")
    return done


def step_args(message: dict):
    """The ExecuteStepArgs a dagster-celery message carries."""
    from dagster._grpc.types import ExecuteStepArgs
    from dagster._serdes import unpack_value

    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, kwargs, _embed = json.loads(body)  # Celery's message protocol 2; dagster-celery passes keywords
    return unpack_value(kwargs.get("execute_step_args_packed") or args[0], as_type=ExecuteStepArgs)


def holder(instance: dg.DagsterInstance, args) -> str | None:
    """The worker (name@host) that last started the step, from the run's events."""
    started = [e for e in instance.all_logs(args.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
               if e.step_key in (args.step_keys_to_execute or []) and "Executing steps" in (e.dagster_event.message or "")]
    if not started:
        return None
    return started[-1].dagster_event.engine_event_data.metadata["Celery worker"].value


def start(name: str, queue: str, echo=print) -> int:
    """Run the worker in the foreground until it stops; returns its exit code.

    Stopping it (SIGTERM, Ctrl-C) kills its whole process group at once: a step it was running
    goes back to the queue and resumes from its checkpoint on the next worker.
    """
    from lume_v6_dagster.celery_app import app

    home = Path(os.environ["DAGSTER_HOME"])
    full = f"{name}@{socket.gethostname()}"
    pool, slots = host_capacity(queue)
    with dg.DagsterInstance.get() as instance:
        capacity.size_pool(instance, pool, slots)
        for line in restore_orphans(app, instance, queue, full):
            echo(line)
    cmd = [str(Path(sys.executable).parent / "celery"), "-A", "lume_v6_dagster.celery_app", "worker", "--prefetch-multiplier=1",
           "--loglevel", "INFO", "-Q", queue, "-n", full, "--concurrency", str(slots), *WITHOUT]
    proc = subprocess.Popen(cmd, env={**os.environ, "LUME_WORKER_NAME": name}, process_group=0)  # Celery and its pool

    def stop_tree(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop_tree)
    deadline = time.time() + READY_TIMEOUT
    while not app.control.ping(destination=[full], timeout=1):
        if proc.poll() is not None:
            return proc.returncode
        if time.time() > deadline:
            stop_tree(signal.SIGTERM, None)
    echo(f"worker {full} ready: queue {queue}, {slots} steps at once (pool {pool}), pid {os.getpid()}, instance {home}")
    return proc.wait()


def launch(name: str, queue: str, env: dict, log: Path, timeout: float = READY_TIMEOUT, prefix: tuple[str, ...] = (),
           cwd: Path | None = None) -> subprocess.Popen:
    """Start `lume-v6 worker` in a session of its own and return once it says it is ready.

    `prefix` runs it inside something, e.g. another host's network namespace (the tests).
    """
    cmd = [*prefix, str(Path(sys.executable).parent / "lume-v6"), "worker", "--name", name, "--queue", queue]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
