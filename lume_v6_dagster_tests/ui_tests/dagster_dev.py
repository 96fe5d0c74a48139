"""Start `dagster dev` for a test and always end it: every process of its session, by PID, SIGKILL.

Processes started in the background here ignore SIGINT/SIGTERM, so the webserver, the
daemon, the code server and any run they launched are found through /proc and killed.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """PIDs whose session id is `sid` (field 6 of /proc/PID/stat)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(stat.parent.name))
    return pids


def kill_session(sid: int) -> None:
    for _ in range(20):
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.25)
    raise RuntimeError(f"processes of session {sid} survived SIGKILL: {session_pids(sid)}")


@contextlib.contextmanager
def dagster_dev(env: dict, log: Path, timeout: float = 180):
    """Yield the base URL of a running `dagster dev` on a free loopback port."""
    port = free_port()
    cmd = [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + timeout
        while True:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"{url}/server_info", timeout=2).status == 200:
                    break
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"dagster dev did not come up; see {log}:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield url
    finally:
        kill_session(proc.pid)
        proc.wait()
