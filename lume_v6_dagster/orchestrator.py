"""The process that orchestrates a run, and noticing when it has died.

A run's orchestrator (the run worker the daemon or UI launched, or the `dagster`/`lume-v6`
command that executes it) submits its steps and records their results. If it dies (Mac4
reboots, it is killed) the run would stay STARTED forever: the schedule skips every night and
the next run waits on the pool slot it holds. So each run records where it is orchestrated
(an engine event with host and PID, from the executor or Dagster's "Started process for run"),
and `HostRunLauncher` tells Dagster's run monitoring (the daemon) whether that process is still
alive; a dead one fails the run, and the daemon then frees its pool slots.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus

HOST_KEY, PID_KEY = "orchestrator host", "orchestrator pid"  # recorded by lume_v6_dagster/celery_executor.py


def orchestrator(instance: dg.DagsterInstance, run_id: str) -> tuple[str | None, int, float] | None:
    """(host or None if unrecorded, pid, when recorded) of the run's orchestrating process, newest first."""
    for entry in reversed(instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)):
        metadata = entry.dagster_event.engine_event_data.metadata
        if PID_KEY in metadata:
            return metadata[HOST_KEY].value, int(metadata[PID_KEY].value), entry.timestamp
        if (entry.dagster_event.message or "").startswith("Started process for run") and "pid" in metadata:
            return None, int(metadata["pid"].value), entry.timestamp
    return None


def alive_since(pid: int, recorded_at: float) -> bool:
    """Is `pid` a live process that was already running when it was recorded (not a later one with a reused PID)?

    A zombie (dead, not yet reaped by its parent) is not alive.
    """
    done = subprocess.run(["ps", "-p", str(pid), "-o", "stat=,lstart="], capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    if done.returncode or not done.stdout.strip():
        return False
    state, *start = done.stdout.split()
    started = time.mktime(time.strptime(" ".join(start), "%a %b %d %H:%M:%S %Y"))
    return not state.startswith("Z") and started <= recorded_at + 1  # lstart has whole seconds


class HostRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher, able to tell run monitoring whether a run's orchestrator still lives.

    Checked from the host that orchestrates (the daemon runs beside the code server on Mac4);
    from any other host it cannot tell, and says the run is running.
    """

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        found = orchestrator(self._instance, run.run_id)
        if found is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no orchestrator recorded yet")
        host, pid, recorded_at = found
        if host is not None and host != socket.gethostname():
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"orchestrated on {host}: checked only there")
        if alive_since(pid, recorded_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"the run's process (pid {pid} on {host or socket.gethostname()}) is gone: "
                                                         "it was killed or its host restarted")
