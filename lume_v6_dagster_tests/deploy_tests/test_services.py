"""`lume-v6 services`: stopping by PID only what is still the service it started."""

import json
import subprocess

from lume_v6_dagster.services import Services


def test_stop_leaves_alone_a_recorded_pid_that_now_runs_something_else(tmp_path):
    """Redis died and its PID went to another program: `services stop` must not kill that program."""
    other = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "services.json").write_text(json.dumps({"pids": {"redis": other.pid}}))
        stopped = Services(root=tmp_path).stop()
        assert other.poll() is None, "services stop killed a process that is not Redis"
        assert stopped == [f"redis (pid {other.pid}: not running it any more, left alone)"]
    finally:
        other.kill()
        other.wait()
