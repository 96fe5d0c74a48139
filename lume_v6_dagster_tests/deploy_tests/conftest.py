"""Two real hosts on this machine: Mac4 and Mac5 as network namespaces, with PostgreSQL, Redis and Celery workers.

Each host is a network namespace with a hostname of its own (a UTS namespace), its own
DAGSTER_HOME, working directory and environment. PostgreSQL and Redis run on Mac4 and listen
on its veth address, the only way Mac5 reaches them. The test process is a Mac4 client: it
reaches Mac4 through a veth of its own and shares Mac4's DAGSTER_HOME. Both hosts see the
capture and artifact roots at the same absolute paths, as Mac5 sees Mac4's mounted disk.

One fixture for the module starts it all and always stops it, by PID, also when a test fails.
"""

import dataclasses
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lume_v6_dagster import worker
from lume_v6_dagster.services import PROGRAMS, Services, runs_program
from lume_v6_dagster.simulate import plan_tracks, simulate_track
from lume_v6_dagster_tests.ui_tests.dagster_dev import REPO, free_port, kill_session

TRACKS = ("s01-sky-garden", "s06-sky-garden", "s02-turquoise-alcove", "s07-turquoise-alcove")  # two modes, each one to train on, one to validate
# The track trained on is longer than the shared 30-second ones, so a full-profile training lasts
# long enough (about 45 s here) for a service to go down while it trains and stay down 30 s.
TRAIN_TRACK_MINUTES = 1.5
QUEUES = {"mac4": "dagster", "mac5": "mac5", "mac5b": "mac5"}
HOSTS = {"mac4": "mac4", "mac5": "mac5", "mac5b": "mac5"}  # worker -> the host it runs on


@dataclasses.dataclass
class Network:
    """Mac4 and Mac5 namespaces: test process <-> Mac4 (10.N.0.1-2), Mac4 <-> Mac5 (10.N.0.5-6)."""

    tag: str
    net: int

    @property
    def mac4_address(self) -> str:
        return f"10.{self.net}.0.5"  # Mac4's address towards Mac5: PostgreSQL and Redis listen here

    def ns(self, host: str) -> str:
        return f"lume-{host}-{self.tag}"

    def up(self) -> None:
        n, t = self.net, self.tag
        self.down()
        for cmd in (f"netns add {self.ns('mac4')}", f"netns add {self.ns('mac5')}",
                    f"link add l4r{t} type veth peer name l4{t}", f"link set l4{t} netns {self.ns('mac4')}",
                    f"link add l45{t} type veth peer name l54{t}", f"link set l45{t} netns {self.ns('mac4')}",
                    f"link set l54{t} netns {self.ns('mac5')}",
                    f"addr add 10.{n}.0.1/30 dev l4r{t}", f"link set l4r{t} up",
                    f"-n {self.ns('mac4')} addr add 10.{n}.0.2/30 dev l4{t}", f"-n {self.ns('mac4')} link set l4{t} up",
                    f"-n {self.ns('mac4')} addr add 10.{n}.0.5/30 dev l45{t}", f"-n {self.ns('mac4')} link set l45{t} up",
                    f"-n {self.ns('mac5')} addr add 10.{n}.0.6/30 dev l54{t}", f"-n {self.ns('mac5')} link set l54{t} up",
                    f"-n {self.ns('mac4')} link set lo up", f"-n {self.ns('mac5')} link set lo up",
                    f"route add 10.{n}.0.4/30 via 10.{n}.0.2"):  # the test process reaches Mac4's address towards Mac5
            subprocess.run(["ip", *cmd.split()], check=True, capture_output=True)

    def down(self) -> None:
        for cmd in (f"link del l4r{self.tag}", f"netns del {self.ns('mac4')}", f"netns del {self.ns('mac5')}"):
            subprocess.run(["ip", *cmd.split()], capture_output=True)

    def on(self, host: str) -> tuple[str, ...]:
        """Run a command on `host`: its namespace, its hostname, umask 022 as a login shell has."""
        return ("ip", "netns", "exec", self.ns(host), "unshare", "--uts", "sh", "-c",
                f'hostname {host} && umask 022 && exec "$@"', "sh")


@dataclasses.dataclass
class TwoHost:
    env: dict  # the Mac4 client's (this test process)
    root: Path
    services: Services
    network: Network
    workers: dict  # name -> Popen
    logs: Path

    def host_env(self, name: str) -> dict:
        """A worker's environment: its host's DAGSTER_HOME and working directory, the shared roots."""
        host = HOSTS[name]
        env = {k: v for k, v in self.env.items() if k not in ("LUME_COMPUTE_LOG_DIR", "PWD")}
        return {**env, "DAGSTER_HOME": str(self.root / host / "home"), "PWD": str(self.root / host / "wd")}

    def start_worker(self, name: str, **env) -> None:
        host = HOSTS[name]
        (self.root / host / "wd").mkdir(parents=True, exist_ok=True)
        self.workers[name] = worker.launch(name, QUEUES[name], {**self.host_env(name), **env}, self.logs / f"{name}-{time.time_ns()}.log",
                                           prefix=self.network.on(host), cwd=self.root / host / "wd")

    def log_file(self, name: str) -> Path:
        """The log of the newest worker of that name."""
        return max(self.logs.glob(f"{name}-*.log"), key=lambda p: int(p.stem.split("-")[-1]))

    def log(self, name: str) -> str:
        """What the newest worker of that name wrote."""
        return self.log_file(name).read_text()

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker's whole session at once, as a power cut would: wrapper, Celery and its step."""
        kill_session(self.workers.pop(name).pid)

    def celery_pid(self, name: str) -> int:
        """The Celery main process of a worker (the child of `lume-v6 worker`)."""
        import psutil

        return next(p.pid for p in psutil.Process(self.workers[name].pid).children() if "celery" in " ".join(p.cmdline()))

    def crash(self, service: str) -> None:
        """End a service at once, as a crash would: Redis by SIGKILL, PostgreSQL by immediate shutdown (SIGQUIT)."""
        pid = json.loads(self.services.state_file.read_text())["pids"][service]
        os.kill(pid, signal.SIGKILL if service == "redis" else signal.SIGQUIT)
        deadline = time.time() + 30
        while runs_program(pid, PROGRAMS[service]):
            assert time.time() < deadline, f"{service} (pid {pid}) did not end"
            time.sleep(0.1)

    def restart_services(self) -> None:
        """`lume-v6 services start` on Mac4 again, as the operator would: it starts what is down."""
        _start_services_on_mac4(self.network, self.services, self.logs)


@pytest.fixture(scope="module")
def two_host(tmp_path_factory, sim_root):
    root = Path(tempfile.mkdtemp(prefix="lume-two-host-", dir="/tmp"))  # PostgreSQL's user must enter it; pytest's are private
    root.chmod(0o755)
    for track in TRACKS[1:]:
        shutil.copytree(sim_root / track, root / "captures" / track)
    simulate_track(next(p for p in plan_tracks(10, TRAIN_TRACK_MINUTES, seed=7) if p.track_id == TRACKS[0]), root / "captures")
    (root / "artifacts").mkdir()
    network = Network(tag=str(os.getpid() % 100000), net=100 + os.getpid() % 100)
    password = secrets.token_urlsafe(12)
    services = Services(root=root / "services", pg_port=free_port(), redis_port=free_port(), host=network.mac4_address, password=password)
    logs = REPO / ".cache" / "two-host-test"
    logs.mkdir(parents=True, exist_ok=True)
    host = None
    try:
        network.up()
        _start_services_on_mac4(network, services, logs)
        env = {**os.environ, **services.env(), "DAGSTER_HOME": str(root / "mac4" / "home"), "LUME_CAPTURE_ROOT": str(root / "captures"),
               "LUME_ARTIFACT_ROOT": str(root / "artifacts"), "LUME_COMPUTE_LOG_DIR": str(root / "artifacts" / "compute-logs"),
               "LUME_TRAINING_PROFILE": "tiny", "LUME_TRAINING_THREADS": "1", "LUME_MAX_DELIVERIES": "2",
               "LUME_TRAINING_PARALLEL": "2"}  # Mac5 holds two of the three training steps: the pool must stop the third
        env.pop("LUME_SERVICES_PASSWORD", None)
        host = TwoHost(env, root, services, network, {}, logs)
        for name in ("mac4", "mac5"):
            host.start_worker(name)
        yield host
    finally:
        for proc in (host.workers.values() if host else []):
            kill_session(proc.pid)
        services.stop()
        network.down()
        shutil.rmtree(root, ignore_errors=True)


def _start_services_on_mac4(network: Network, services: Services, logs: Path) -> None:
    """`lume-v6 services start` on Mac4, listening on its address towards Mac5; what it prints is kept."""
    done = subprocess.run([*network.on("mac4"), str(Path(sys.executable).parent / "lume-v6"), "services", "start", "--dir", str(services.root),
                           "--pg-port", str(services.pg_port), "--redis-port", str(services.redis_port), "--host", services.host],
                          env={**os.environ, "LUME_SERVICES_PASSWORD": services.password}, capture_output=True, text=True, timeout=120)
    (logs / "services-start.log").write_text(done.stdout + done.stderr)
    if done.returncode:
        raise RuntimeError(f"services did not start on mac4: {done.stdout}{done.stderr}")
