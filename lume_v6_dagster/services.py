"""Local PostgreSQL and Redis on loopback, for development and tests: start, stop, status.

`lume-v6 services start` runs a private PostgreSQL cluster (the shared Dagster instance) and
a `redis-server` (the Celery broker and result backend) under `./.services/`. As root,
PostgreSQL runs as the `postgres` user (initdb refuses root). Both ask for the password
(LUME_SERVICES_PASSWORD): Redis and psql get it on standard input, never a command line;
initdb reads it from a file only the postgres user can read, deleted as soon as initdb ends.
Everything started is recorded with its PID in `services.json`, and stopped by PID once the
PID is checked to be still that service; `start` again after one of them died starts that one
only. Production uses real servers instead: only the environment variables of `env()` change.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

DEFAULT_DIR = Path(".services")
DB, USER = "lume_v6", "lume"
START_TIMEOUT = 60.0
DEFAULT_PASSWORD = "lume-local"  # the loopback-only development pair; set LUME_SERVICES_PASSWORD for any other
PROGRAMS = {"postgres": "postgres", "redis": "redis-server"}  # what a recorded PID must still be running


class ServiceError(RuntimeError):
    """A service cannot be found, started or reached; the message says which and why."""


@dataclass
class Services:
    root: Path = DEFAULT_DIR
    pg_port: int = 5433
    redis_port: int = 6380
    password: str = field(default_factory=lambda: os.environ.get("LUME_SERVICES_PASSWORD", DEFAULT_PASSWORD), repr=False)
    host: str = "127.0.0.1"  # the address clients use; both also listen on loopback

    @property
    def state_file(self) -> Path:
        return self.root / "services.json"

    def env(self) -> dict[str, str]:
        """What the UI, the daemon and every worker need to share this instance and broker."""
        return {"LUME_DEPLOYMENT": "two-host", "LUME_PG_HOST": self.host, "LUME_PG_PORT": str(self.pg_port),
                "LUME_PG_USER": USER, "LUME_PG_PASSWORD": self.password, "LUME_PG_DB": DB,
                "LUME_BROKER_URL": f"redis://:{quote(self.password, safe='')}@{self.host}:{self.redis_port}/0"}

    def shown_env(self) -> dict[str, str]:
        """`env()` fit to print: the password as a reference to the variable that holds it."""
        hidden = "${LUME_SERVICES_PASSWORD}"
        return {k: v.replace(quote(self.password, safe=""), hidden).replace(self.password, hidden) for k, v in self.env().items()}

    def start(self) -> dict[str, str]:
        """Start both; when one of them still runs (the other crashed, or was stopped for a restart), start the other only."""
        self.root = self.root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        pids = self._still_running()
        started = []
        try:
            for name, start in (("postgres", self._start_postgres), ("redis", self._start_redis)):
                if name not in pids:
                    pids[name] = start()
                    started.append(name)
        except BaseException:
            for name in started:
                stop_pid(pids[name], signal.SIGINT if name == "postgres" else signal.SIGTERM)
            raise
        self.state_file.write_text(json.dumps({"root": str(self.root), "host": self.host, "pg_port": self.pg_port,
                                               "redis_port": self.redis_port, "pids": pids}, indent=2))
        return self.env()

    def _still_running(self) -> dict[str, int]:
        """The services recorded by an earlier `start` on the same ports whose PIDs still run them."""
        if not self.state_file.exists():
            return {}
        state = json.loads(self.state_file.read_text())
        if (state.get("pg_port"), state.get("redis_port")) != (self.pg_port, self.redis_port):
            return {}
        return {name: pid for name, pid in state["pids"].items() if runs_program(pid, PROGRAMS[name])}

    def status(self) -> dict[str, str]:
        """Each service: 'up (pid N, port P)' or 'down'."""
        pids = json.loads(self.state_file.read_text())["pids"] if self.state_file.exists() else {}
        ports = {"postgres": self.pg_port, "redis": self.redis_port}
        return {name: f"up (pid {pids.get(name, '?')}, port {port})" if _listening(port, self.host) else "down"
                for name, port in ports.items()}

    def stop(self) -> list[str]:
        """Stop what `start` recorded, by PID (SIGTERM, then SIGKILL); returns what was stopped.

        A recorded PID that now runs something else (the service died, the PID was reused) is
        left alone and reported.
        """
        if not self.state_file.exists():
            return []
        pids = json.loads(self.state_file.read_text())["pids"]
        stopped = []
        for name, pid in pids.items():
            if not runs_program(pid, PROGRAMS[name]):
                stopped.append(f"{name} (pid {pid}: not running it any more, left alone)")
                continue
            stop_pid(pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)  # SIGINT: PostgreSQL's fast shutdown
            stopped.append(f"{name} (pid {pid})")
        self.state_file.unlink()
        return stopped

    # --- PostgreSQL -------------------------------------------------------------------------------

    def _as_postgres(self, *cmd: str) -> list[str]:
        return [_runuser(), "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)

    def _pg_ctl_start(self, home: Path) -> None:
        _run(self._as_postgres(_pg_bin("pg_ctl"), "-D", str(home / "data"), "-l", str(home / "postgres.log"), "-w",
                               "-t", str(int(START_TIMEOUT)), "-o", f"-p {self.pg_port} -k {home} -c listen_addresses={self._addresses(',')}",
                               "start"), "PostgreSQL", home / "postgres.log")

    def _addresses(self, sep: str) -> str:
        return sep.join(dict.fromkeys(["127.0.0.1", self.host]))

    def _start_postgres(self) -> int:
        if _listening(self.pg_port, self.host):
            raise ServiceError(f"port {self.pg_port} is already in use: stop what holds it or choose another with --pg-port")
        if os.geteuid() == 0:
            self.root.chmod(0o755)
            if subprocess.run(self._as_postgres("test", "-x", str(self.root))).returncode:
                raise ServiceError(f"PostgreSQL runs as the postgres user, who cannot enter {self.root} (a private folder above it?): "
                                   "choose a folder it can reach")
        home = self.root / "postgres"  # owned by the user PostgreSQL runs as: data, log, socket
        if not (home / "data" / "PG_VERSION").exists():
            self._initdb(home)
        self._pg_ctl_start(home)
        return int((home / "data" / "postmaster.pid").read_text().split()[0])

    def _initdb(self, home: Path) -> None:
        owner = ["-o", "postgres"] if os.geteuid() == 0 else []
        _run(["install", "-d", *owner, "-m", "700", str(home)], "PostgreSQL folder")
        # initdb reads the superuser's password from a file only: one the postgres user alone can read, gone at once.
        pwfile = home / "initdb.pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        try:
            _run(self._as_postgres(_pg_bin("initdb"), "-D", str(home / "data"), "-U", "postgres", "--auth=scram-sha-256",
                                   f"--pwfile={pwfile}", "-E", "UTF8"), "PostgreSQL initdb")
        finally:
            pwfile.unlink()
        with open(home / "data" / "pg_hba.conf", "a") as hba:  # clients on the hosts' own networks (with --host), by password
            hba.write("host all all samenet scram-sha-256\n")
        self._pg_ctl_start(home)
        try:  # psql gets the role's password on standard input, not its command line
            quoted = self.password.replace("'", "''")
            _run([_pg_bin("psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-f", "-"],
                 "PostgreSQL role and database", env={**os.environ, "PGPASSWORD": self.password},
                 stdin=f"CREATE ROLE {USER} LOGIN PASSWORD '{quoted}';\nCREATE DATABASE {DB} OWNER {USER};\n")
        finally:
            _run(self._as_postgres(_pg_bin("pg_ctl"), "-D", str(home / "data"), "-w", "-m", "fast", "stop"), "PostgreSQL")

    # --- Redis --------------------------------------------------------------------------------

    def _start_redis(self) -> int:
        if _listening(self.redis_port, self.host):
            raise ServiceError(f"port {self.redis_port} is already in use: stop what holds it or choose another with --redis-port")
        server = shutil.which("redis-server")
        if server is None:
            raise ServiceError("redis-server is not installed (scripts/setup.sh installs Debian's redis-server; on macOS: brew install redis)")
        pidfile, log = self.root / "redis.pid", self.root / "redis.log"
        pidfile.unlink(missing_ok=True)  # left by a Redis that was killed: the new one's PID is awaited below
        # "-": the rest of the configuration, the password, comes on standard input.
        _run([server, "-", "--port", str(self.redis_port), "--bind", *self._addresses(" ").split(), "--daemonize", "yes",
              "--pidfile", str(pidfile), "--logfile", str(log), "--dir", str(self.root), "--appendonly", "yes", "--save", ""],
             "Redis", log, stdin=f"requirepass {self.password}\n")
        deadline = time.time() + START_TIMEOUT
        while not (_listening(self.redis_port, self.host) and pidfile.exists() and pidfile.read_text().strip()):
            if time.time() > deadline:
                raise ServiceError(f"Redis did not listen on 127.0.0.1:{self.redis_port} within {START_TIMEOUT:.0f} s; see {log}")
            time.sleep(0.1)
        return int(pidfile.read_text())


def _pg_bin(name: str) -> str:
    """A PostgreSQL program: Debian keeps them under /usr/lib/postgresql/<version>/bin, Homebrew on PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    for folder in reversed(versions):
        if (folder / name).exists():
            return str(folder / name)
    if found := shutil.which(name):
        return found
    raise ServiceError(f"PostgreSQL's {name} is not installed (scripts/setup.sh installs Debian's postgresql; on macOS: brew install postgresql)")


def _runuser() -> str:
    """util-linux's runuser: in /usr/sbin, which a non-login root shell may not have on PATH."""
    for found in (shutil.which("runuser"), "/usr/sbin/runuser", "/sbin/runuser"):
        if found and Path(found).exists():
            return found
    raise ServiceError("runuser is not installed (Debian: util-linux): as root, PostgreSQL must run as the postgres user")


def _run(cmd: list[str], what: str, log: Path | None = None, env: dict | None = None, stdin: str | None = None) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, input=stdin, timeout=START_TIMEOUT + 30)
    if done.returncode:
        tail = log.read_text()[-1500:] if log is not None and log.exists() else ""
        raise ServiceError(f"{what} failed ({' '.join(cmd[:3])} ...): {(done.stderr or done.stdout).strip()[-1500:]}\n{tail}".strip())


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def runs_program(pid: int, program: str) -> bool:
    """Is `pid` alive and running `program` (ps: Linux and macOS alike)?"""
    done = subprocess.run(["ps", "-p", str(pid), "-o", "comm="], capture_output=True, text=True)
    return done.returncode == 0 and Path(done.stdout.strip()).name.startswith(program)


def stop_pid(pid: int, first: signal.Signals = signal.SIGTERM, grace: float = 10.0) -> None:
    """`first`, then SIGKILL after `grace` seconds; a PID already gone is fine."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, first)
        deadline = time.time() + grace
        while time.time() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
