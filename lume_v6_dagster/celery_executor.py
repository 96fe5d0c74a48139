"""The two-host executor: dagster-celery's, recording where the run is orchestrated and waiting out a broker restart.

- Before it submits any step it records "Orchestrating on HOST (pid N)" (read by run
  monitoring, lume_v6_dagster/orchestrator.py).
- A broker that is down when the run starts fails the run at once, naming it.
- dagster-celery's loop asks each step's result "ready?" every second, and one connection
  error there ends the run. Here a broker that goes away mid-run is waited for, up to
  `deployment.service_patience()` seconds, with a warning in the run's log when it goes and
  when it is back; the steps on the workers run on meanwhile.
"""

from __future__ import annotations

import os
import socket
import time

import celery.result
import dagster as dg
import kombu.exceptions
import redis.exceptions
from dagster._core.definitions.executor_definition import multiple_process_executor_requirements
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.retries import RetryMode
from dagster_celery.core_execution_loop import core_celery_execution_loop
from dagster_celery.executor import CeleryExecutor, _submit_task, celery_executor  # private: dagster-celery is pinned exactly

from lume_v6_dagster import deployment
from lume_v6_dagster.orchestrator import HOST_KEY, PID_KEY

BROKER_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, kombu.exceptions.OperationalError, OSError)


class BrokerGone(RuntimeError):
    """The broker stayed unreachable mid-run for longer than the service patience."""


class PatientResult(celery.result.AsyncResult):
    """A step's Celery result whose `ready()` is False, not an error, while the broker is briefly away."""

    def __init__(self, task_id, app, log):
        super().__init__(task_id, app=app)
        self._log, self._lost_since = log, None

    def ready(self):
        try:
            ready = super().ready()
        except BROKER_ERRORS as exc:
            now, patience = time.monotonic(), deployment.service_patience()
            if self._lost_since is None:
                self._lost_since = now
                self._log.warning(f"the broker is unreachable ({exc}); waiting up to {patience:.0f} s for it, the step runs on")
            if now - self._lost_since > patience:
                raise BrokerGone(f"the broker stayed unreachable for {patience:.0f} s (LUME_SERVICE_PATIENCE): {exc}") from exc
            return False
        if self._lost_since is not None:
            self._log.info(f"the broker is reachable again after {time.monotonic() - self._lost_since:.0f} s")
            self._lost_since = None
        return ready


def _submit_patiently(app, plan_context, step, queue, priority, known_state):
    result = _submit_task(app, plan_context, step, queue, priority, known_state)
    return PatientResult(result.id, app, plan_context.for_step(step).log)


class HostCeleryExecutor(CeleryExecutor):
    """dagster-celery's executor, saying where it orchestrates and patient with its broker."""

    def execute(self, plan_context, execution_plan):
        if problem := deployment.broker_problem():
            raise dg.Failure(f"{problem}: no step was submitted")
        host, pid = socket.gethostname(), os.getpid()
        yield DagsterEvent.engine_event(plan_context, f"Orchestrating on {host} (pid {pid})",
                                        EngineEventData({HOST_KEY: host, PID_KEY: pid}))
        yield from core_celery_execution_loop(plan_context, execution_plan, step_execution_fn=_submit_patiently)

    @classmethod
    def from_config(cls, config: dict) -> "HostCeleryExecutor":
        """No backend configured (None): the run's own LUME_RESULT_BACKEND, else its broker's next database, as the workers'."""
        return cls(broker=config.get("broker"), backend=config.get("backend") or deployment.result_backend_url(),
                   config_source=config.get("config_source"), include=config.get("include"),
                   retries=RetryMode.from_config(config["retries"]))


@dg.executor(name="celery", config_schema=celery_executor.config_schema, requirements=multiple_process_executor_requirements())
def host_celery_executor(init_context):
    return HostCeleryExecutor.from_config(init_context.executor_config)
