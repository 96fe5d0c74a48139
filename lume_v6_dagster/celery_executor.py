"""The two-host executor: dagster-celery's, recording where the run is orchestrated (lume_v6_dagster/orchestrator.py)."""

from __future__ import annotations

import os
import socket

import dagster as dg
from dagster._core.definitions.executor_definition import multiple_process_executor_requirements
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.execution.retries import RetryMode
from dagster_celery.executor import CeleryExecutor, celery_executor

from lume_v6_dagster.orchestrator import HOST_KEY, PID_KEY


class HostCeleryExecutor(CeleryExecutor):
    """dagster-celery's executor, recording where it orchestrates before it submits any step."""

    def execute(self, plan_context, execution_plan):
        host, pid = socket.gethostname(), os.getpid()
        yield DagsterEvent.engine_event(plan_context, f"Orchestrating on {host} (pid {pid})",
                                        EngineEventData({HOST_KEY: host, PID_KEY: pid}))
        yield from super().execute(plan_context, execution_plan)


@dg.executor(name="celery", config_schema=celery_executor.config_schema, requirements=multiple_process_executor_requirements())
def host_celery_executor(init_context):
    config = init_context.executor_config
    return HostCeleryExecutor(broker=config.get("broker"), backend=config.get("backend"), config_source=config.get("config_source"),
                              include=config.get("include"), retries=RetryMode.from_config(config["retries"]))
