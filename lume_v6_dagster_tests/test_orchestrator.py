"""Is a run's orchestrating process still the one that recorded itself? (run monitoring's question)."""

import subprocess
import time

from lume_v6_dagster.orchestrator import alive_since


def test_a_live_process_counts_only_if_it_was_running_when_recorded_and_is_not_a_zombie():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(1.2)
        assert alive_since(proc.pid, time.time())
        assert not alive_since(proc.pid, time.time() - 60), "a PID reused by a later process passed for the recorded one"
        proc.kill()
        time.sleep(0.5)
        assert not alive_since(proc.pid, time.time()), "a dead process not yet reaped (a zombie) passed for alive"
    finally:
        proc.kill()
        proc.wait()
    assert not alive_since(proc.pid, time.time())
