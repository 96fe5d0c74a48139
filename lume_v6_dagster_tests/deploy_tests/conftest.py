"""Real services for the two-host tests: PostgreSQL and Redis on loopback, and two real Celery workers.

One fixture for the module starts them and always stops them, by PID, also when a test fails:
each `lume-v6 worker` runs in a session of its own and is killed as a whole.
"""

import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from lume_v6_dagster import worker
from lume_v6_dagster.services import Services
from lume_v6_dagster_tests.ui_tests.dagster_dev import REPO, free_port, kill_session

TRACKS = ("s01-sky-garden", "s06-sky-garden", "s02-turquoise-alcove")  # one sky garden track to train on, two to validate
QUEUES = {"mac4": "dagster", "mac5": "mac5"}


@dataclasses.dataclass
class TwoHost:
    env: dict
    root: Path
    services: Services
    workers: dict  # name -> Popen
    logs: Path

    def start_worker(self, name: str) -> None:
        self.workers[name] = worker.launch(name, QUEUES[name], self.env, self.logs / f"{name}-{time.time_ns()}.log")

    def log(self, name: str) -> str:
        """What the newest worker of that name wrote."""
        return max(self.logs.glob(f"{name}-*.log"), key=lambda p: int(p.stem.split("-")[-1])).read_text()

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker's whole session at once, as a power cut would: wrapper, Celery and its step."""
        kill_session(self.workers.pop(name).pid)


@pytest.fixture(scope="module")
def two_host(tmp_path_factory, sim_root):
    root = tmp_path_factory.mktemp("two_host")
    for track in TRACKS:
        shutil.copytree(sim_root / track, root / "captures" / track)
    (root / "artifacts").mkdir()
    # PostgreSQL runs as the postgres user, who cannot enter pytest's private temporary folders.
    services = Services(root=Path(tempfile.mkdtemp(prefix="lume-services-", dir="/tmp")), pg_port=free_port(), redis_port=free_port())
    logs = REPO / ".cache" / "two-host-test"
    logs.mkdir(parents=True, exist_ok=True)
    host = None
    try:
        env = {**os.environ, **services.start(), "DAGSTER_HOME": str(root / "home"), "LUME_CAPTURE_ROOT": str(root / "captures"),
               "LUME_ARTIFACT_ROOT": str(root / "artifacts"), "LUME_TRAINING_PROFILE": "tiny", "LUME_TRAINING_THREADS": "1",
               "LUME_TRAINING_PARALLEL": "2"}  # Mac5 holds two of the three training steps: the pool must stop the third
        host = TwoHost(env, root, services, {}, logs)
        for name in QUEUES:
            host.start_worker(name)
        yield host
    finally:
        for proc in (host.workers.values() if host else []):
            kill_session(proc.pid)
        services.stop()
        shutil.rmtree(services.root, ignore_errors=True)
