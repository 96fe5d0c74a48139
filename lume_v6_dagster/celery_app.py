"""The Celery app of `lume-v6 worker` (`celery -A lume_v6_dagster.celery_app worker`): dagster-celery's tasks.

Configured from the environment when the worker starts, so nothing holding the broker's URL
(and its password) is written to disk; dagster-celery's own `worker start` writes it into a
config module under DAGSTER_HOME. Its step task also
- counts deliveries: a step whose process died in every one of `deployment.max_deliveries()`
  deliveries fails, naming itself and the count, instead of being sent again forever;
- ends with its run: dagster-celery revokes a running step without terminating it, so a
  terminated run (or one whose orchestrator died and run monitoring failed) would keep Mac5
  training. A watcher thread reads the run's status and has Celery terminate the step;
- is dropped when its run has already ended (a message handed out again long after its step
  ended, e.g. one whose acknowledgement was lost while the broker was down).
The worker waits out a broker restart: it reconnects without a limit, keeps its running steps
and their messages (lume_v6_dagster/broker_transport.py), and stores a step's result once the
broker is back.
"""

from __future__ import annotations

import logging
import threading

import celery
import dagster as dg
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import unpack_value
from celery.exceptions import Ignore
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task, create_task

from lume_v6_dagster import deployment

WATCH_SECONDS = 2.0  # how often a running step reads its run's status
ENDED = (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)
log = logging.getLogger(__name__)


class StepKeptKillingItsWorker(RuntimeError):
    """A step's process died in each of its deliveries (out of memory, a native crash)."""


class CountedDelivery(celery.Task):
    """dagster-celery's step task, refused once its earlier deliveries all lost their process."""

    def __call__(self, execute_step_args_packed, executable_dict):
        args = unpack_value(execute_step_args_packed, as_type=ExecuteStepArgs)
        lost, limit = self.request.retries, deployment.max_deliveries()
        if lost >= limit:
            with dg.DagsterInstance.from_ref(args.instance_ref) as instance:
                _free_slots(instance, args)
            raise StepKeptKillingItsWorker(
                f"step {', '.join(args.step_keys_to_execute or [])}: its worker process died in each of its {lost} deliveries "
                f"(out of memory? a native crash?); not sent again (LUME_MAX_DELIVERIES={limit}). The worker's log says how each one ended.")
        with dg.DagsterInstance.from_ref(args.instance_ref) as instance:
            run = instance.get_run_by_id(args.run_id)
        if run is None or run.is_finished:
            log.warning("dropped step %s: its run %s has %s", ", ".join(args.step_keys_to_execute or []), args.run_id,
                        "ended" if run else "gone")
            raise Ignore()  # no result is stored: nobody waits for one
        done = threading.Event()
        threading.Thread(target=_end_with_run, args=(self.app, args, self.request.id, done), daemon=True).start()
        try:
            return super().__call__(execute_step_args_packed, executable_dict)
        finally:
            done.set()


def _free_slots(instance: dg.DagsterInstance, args: ExecuteStepArgs) -> None:
    """Give back the pool slots of steps that will not run on: no step event will end them."""
    for step in args.step_keys_to_execute or []:
        instance.event_log_storage.free_concurrency_slot_for_step(args.run_id, step)


def _end_with_run(app, args: ExecuteStepArgs, task_id: str, done: threading.Event) -> None:
    """Have the worker terminate this step once its run is terminated, cancelled or failed.

    The request goes again at every tick until it lands (and ends this process): a broadcast
    sent while the worker is reconnecting to its broker reaches nobody.
    """
    with dg.DagsterInstance.from_ref(args.instance_ref) as instance:
        while not done.wait(WATCH_SECONDS):
            try:
                run = instance.get_run_by_id(args.run_id)
                if run is None or run.status in ENDED:
                    _free_slots(instance, args)
                    app.control.revoke(task_id, terminate=True, signal="SIGKILL")
            except Exception as exc:  # the database or the broker restarting: ask again at the next tick
                log.warning("step %s: could not check on its run (%s); trying again", task_id, exc)


app = make_app(CeleryExecutor.for_cli(**deployment.celery_config()).app_args())
app.conf.update(
    broker_transport="lume_v6_dagster.broker_transport:Transport",  # keeps running steps' messages through a reconnect
    broker_connection_max_retries=None,  # a worker outlives a broker restart: it reconnects until the broker is back
    result_backend_always_retry=True,  # a step that ends while the broker is down stores its result once it is back
    worker_cancel_long_running_tasks_on_connection_loss=False,  # Celery's default, relied on: training goes on
)
# max_retries above the limit: the delivery after the last lost one runs __call__ and fails there, by name.
execute_plan = create_task(app, base=CountedDelivery, max_retries=deployment.max_deliveries() + 1,
                           default_retry_delay=deployment.RETRY_DELAY)
execute_job = create_execute_job_task(app)
resume_job = create_resume_job_task(app)
