"""Where runs keep their records and where steps execute, chosen by environment in this one place.

- `embedded` (the default): a SQLite instance under DAGSTER_HOME; steps run in the run's own
  process (the demo, and every track's ingest) or in processes forked for them (the other runs
  the UI or the schedule launches).
- `two-host` (`LUME_DEPLOYMENT=two-host`): one Dagster instance on PostgreSQL (`LUME_PG_*`)
  shared by Mac4 and Mac5, and steps on Celery workers through a Redis broker
  (`LUME_BROKER_URL`). Training steps carry the training host's queue in their op tags
  (`TRAINING_TAGS`); every other step goes to the default queue, which Mac4's worker serves.
"""

from __future__ import annotations

import os
import shutil
import socket
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dagster as dg

REPO = Path(__file__).resolve().parent.parent
QUEUE_TAG = "dagster-celery/queue"
DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue: ingest and release steps, Mac4's worker
TRAINING_QUEUE = os.environ.get("LUME_TRAINING_QUEUE", "mac5")
TRAINING_TAGS = {QUEUE_TAG: TRAINING_QUEUE}
# Redis re-delivers a message that stays unacknowledged past this; with late acks a running
# step holds its message, so this must outlast the longest step (a full training: ~25 min).
VISIBILITY_TIMEOUT = 7 * 24 * 3600
CONNECT_TIMEOUT = 5  # seconds before an unreachable broker or database is reported
# A step whose worker process dies (out of memory, a native crash) is sent again; after this many
# deliveries that each killed their process the step fails instead of looping (LUME_MAX_DELIVERIES).
MAX_DELIVERIES = 3
RETRY_DELAY = 2  # seconds between a lost delivery and the next
# A broker or database that was reachable and went away (a restart, a failover) is waited for
# this long by runs and steps before they fail naming it (LUME_SERVICE_PATIENCE); one that is
# down when a command or run starts is still reported within CONNECT_TIMEOUT.
SERVICE_PATIENCE = 300.0
ROOTS = {"LUME_CAPTURE_ROOT": "./data/captures", "LUME_ARTIFACT_ROOT": "./data/artifacts"}


def name() -> str:
    value = os.environ.get("LUME_DEPLOYMENT", "embedded")
    if value not in ("embedded", "two-host"):
        raise ValueError(f"LUME_DEPLOYMENT={value!r}: one of embedded, two-host")
    return value


def default_home() -> Path:
    """DAGSTER_HOME when unset, the same for every command: two-host keeps its PostgreSQL config apart."""
    return Path(".dagster-two-host" if name() == "two-host" else ".dagster").resolve()


def roots() -> tuple[str, str]:
    """(capture root, artifact root) from the environment; two hosts need absolute paths both see.

    A relative path would resolve against each host's own working directory: Mac5 would
    train on, and write to, folders Mac4 never reads.
    """
    values = [os.environ.get(key, default) for key, default in ROOTS.items()]
    if name() == "two-host":
        for key, value in zip(ROOTS, values):
            if key not in os.environ or not Path(value).is_absolute():
                raise ValueError(f"{key}={os.environ.get(key, '(unset)')}: two hosts need an absolute path that both see "
                                 f"(e.g. /Volumes/HD1/...), not one each host resolves against its own working directory")
    return values[0], values[1]


def compute_log_dir() -> str:
    """Where steps' stdout and stderr go: under the shared artifact root, so Mac4's UI shows what Mac5 printed."""
    return os.environ.setdefault("LUME_COMPUTE_LOG_DIR", str(Path(roots()[1]) / "compute-logs"))


def instance_yaml() -> Path:
    """The dagster.yaml of this deployment: SQLite (embedded) or PostgreSQL (two-host)."""
    return REPO / ("dagster.two-host.yaml" if name() == "two-host" else "dagster.yaml")


def prepare_instance_home(home: Path) -> Path:
    """Give DAGSTER_HOME this deployment's dagster.yaml (Dagster reads it from there only)."""
    home.mkdir(parents=True, exist_ok=True)
    if name() == "two-host":
        compute_log_dir()
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copy(instance_yaml(), target)
    elif name() == "two-host" and "postgres" not in target.read_text():
        raise ValueError(f"{target} keeps runs in SQLite, but LUME_DEPLOYMENT=two-host needs the shared PostgreSQL "
                         f"instance: point DAGSTER_HOME at another folder, or copy {instance_yaml()} there")
    return home


def broker_url() -> str:
    url = os.environ.get("LUME_BROKER_URL")
    if not url:
        raise ValueError("LUME_BROKER_URL is not set (e.g. redis://mac4.local:6379/0): the two-host deployment needs the broker")
    return url


def result_backend_url() -> str:
    """LUME_RESULT_BACKEND, else the broker's Redis on the next database number."""
    if url := os.environ.get("LUME_RESULT_BACKEND"):
        return url
    parts = urlsplit(broker_url())
    db = int(parts.path.strip("/") or 0) + 1
    return urlunsplit(parts._replace(path=f"/{db}"))


def secret_free(url: str) -> str:
    """A URL fit to print: its password masked."""
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)


def service_patience() -> float:
    return float(os.environ.get("LUME_SERVICE_PATIENCE", SERVICE_PATIENCE))


def max_deliveries() -> int:
    return int(os.environ.get("LUME_MAX_DELIVERIES", MAX_DELIVERIES))


def celery_config(urls: bool = True) -> dict:
    """The Celery settings every worker and every run share (they must match).

    With `urls=False` nothing holding a URL goes in (run config and job snapshots are stored in
    the instance, and a URL may hold a password): the broker is a reference to the environment
    and the backend is None, both resolved in the run's own process
    (lume_v6_dagster/celery_executor.py). This process's environment is left as it was.
    """
    if urls:
        locations = {"broker": broker_url(), "backend": result_backend_url()}
    else:
        locations = {"broker": {"env": "LUME_BROKER_URL"}, "backend": None}
    return {
        **locations,
        "config_source": {
            # A step's message is acknowledged when the step ends, and handed back to the queue if
            # its worker dies mid-step: a restarted worker runs it again (training resumes from
            # its checkpoint) instead of the run waiting forever for a result that never comes.
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            # A worker that lives while its step's process dies sends the step again itself, counting:
            # lume_v6_dagster/celery_app.py fails it after max_deliveries().
            "task_retry_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "worker_concurrency": 1,  # `lume-v6 worker` passes its host's capacity instead (lume_v6_dagster/capacity.py)
            "broker_connection_timeout": CONNECT_TIMEOUT,
            "broker_connection_max_retries": 3,
            "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT, "max_retries": 3,
                                         "socket_connect_timeout": CONNECT_TIMEOUT},
            "redis_socket_connect_timeout": CONNECT_TIMEOUT,
            # A step submitted while the broker restarts waits for it (1 s, 2 s, ... then every 5 s).
            "task_publish_retry_policy": {"max_retries": int(service_patience() // 5) + 4, "interval_start": 0,
                                          "interval_step": 1, "interval_max": 5},
        },
    }


def executor():
    """The executor for every job: Celery in two-host (saying where it orchestrates), else steps forked from a server."""
    if name() != "two-host":
        return steps_forked
    from celery.exceptions import DuplicateTaskNameWarning

    from lume_v6_dagster.celery_executor import host_celery_executor

    # dagster-celery re-creates its one task, identical, for every step it submits from a
    # process; Celery keeps the first and warns for each later one.
    warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)
    return host_celery_executor.configured(celery_config(urls=False))


def track_executor():
    """How one track's ingest runs: in its run's own process on one host, where its steps follow one
    another anyway and a fork server per run imported the code again (~5 CPU-s a track, the sensor
    launching a run per track); on two hosts, the deployment's executor (None), so Mac4's worker runs them."""
    return dg.in_process_executor if name() != "two-host" else None


# A run launched by the UI or the schedule starts each step in a process of its own.
# Dagster's default spawns a fresh interpreter per step, which imports torch, MLX and coremltools
# again (10-20 s a step on 2 cores, longer than an ingest step's work); a fork server that
# imported this code once per run forks each step in well under a second.
FORKSERVER = {"forkserver": {"preload_modules": ["lume_v6_dagster.definitions"]}}


def _forked_unless_named(config: dict) -> dict:
    """The run's multiprocess config, forking steps unless it names another start method."""
    return {"start_method": FORKSERVER, **config}


steps_forked = dg.multiprocess_executor.configured(_forked_unless_named, config_schema=dg.Permissive())  # run config: execution: {config: {max_concurrent: 2}}


def unreachable(capture_root: str, artifact_root: str) -> list[str]:
    """What a worker needs and cannot reach: the instance, the broker, the capture and artifact roots."""
    problems = []
    try:
        import psycopg2

        env = os.environ
        psycopg2.connect(host=env.get("LUME_PG_HOST", "localhost"), port=int(env.get("LUME_PG_PORT", 5432)),
                         user=env.get("LUME_PG_USER"), password=env.get("LUME_PG_PASSWORD"), dbname=env.get("LUME_PG_DB", "lume_v6"),
                         connect_timeout=CONNECT_TIMEOUT).close()
    except Exception as e:  # noqa: BLE001 - any failure to connect is reported with its reason
        problems.append(f"the Dagster instance (PostgreSQL at {os.environ.get('LUME_PG_HOST', 'localhost')}:"
                        f"{os.environ.get('LUME_PG_PORT', 5432)}) cannot be reached: {str(e).strip().splitlines()[0]}")
    if problem := broker_problem():
        problems.append(problem)
    for label, root, write in (("capture root", capture_root, False), ("artifact root", artifact_root, True)):
        if not Path(root).is_dir():
            problems.append(f"the {label} {root} does not exist here: both hosts must see it at the same absolute path")
        elif not os.access(root, os.W_OK if write else os.R_OK):
            problems.append(f"the {label} {root} is not {'writable' if write else 'readable'} here")
    return problems


def broker_problem() -> str | None:
    """Why the broker cannot be reached now (within CONNECT_TIMEOUT), or None."""
    try:
        import redis

        redis.Redis.from_url(broker_url(), socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT).ping()
    except Exception as e:  # noqa: BLE001 - any failure to connect is reported with its reason
        url = secret_free(os.environ.get("LUME_BROKER_URL", "LUME_BROKER_URL unset"))
        return f"the broker ({url}) cannot be reached: {e}"
    return None


def where_it_ran() -> dict[str, str | int]:
    """Worker, host and process of the step now running: every materialization records them."""
    from celery import current_task

    worker = getattr(getattr(current_task, "request", None), "hostname", None)
    return {"worker": worker or os.environ.get("LUME_WORKER_NAME", "in-process"), "host": socket.gethostname(), "pid": os.getpid()}
