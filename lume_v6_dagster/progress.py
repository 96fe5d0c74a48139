"""Training progress read from a run's event log: one bar per model (epoch / total, latest losses), and one
per noise fit (grid points scored / total: a minute or two after the last epoch on the full profile).

The event log is where every executor writes (in-process, or a Celery worker on another
host), so following it shows the same progress wherever the steps run.
"""

from __future__ import annotations

import contextlib
import re
import threading
from typing import Callable

import dagster as dg
from tqdm import tqdm

EPOCH = re.compile(r"epoch (\d+)/(\d+): train ([-\d.]+) val ([-\d.]+)")
FIT = re.compile(r"noise fit (\d+)/(\d+)")  # noise.fit's log lines
POLL_SECONDS = 1.0


class RunProgress:
    """Reads new log lines of one run and moves a tqdm bar per step that reports epochs."""

    def __init__(self, instance: dg.DagsterInstance, run_id: Callable[[], str | None]):
        self.instance, self.find_run = instance, run_id  # the id may be known only once the run exists
        self.run_id: str | None = None
        self.cursor: str | None = None
        self.bars: dict[str, tqdm] = {}

    def poll(self) -> None:
        self.run_id = self.run_id or self.find_run()
        while self.run_id:
            page = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=1000)
            self.cursor = page.cursor
            for record in page.records:
                self._show(record.event_log_entry)
            if not page.has_more:
                return

    def _show(self, entry) -> None:
        message = (entry.user_message or "") if entry.dagster_event is None and entry.step_key else ""
        if match := EPOCH.search(message):
            bar = self._bar(entry.step_key, int(match[2]), "epoch")
            bar.set_postfix(train=f"{float(match[3]):.4f}", val=f"{float(match[4]):.4f}", refresh=False)
            self._move(bar, int(match[1]))
        elif match := FIT.search(message):
            self._move(self._bar(f"{entry.step_key} noise fit", int(match[2]), "point"), int(match[1]))

    def _bar(self, desc: str, total: int, unit: str) -> tqdm:
        if desc not in self.bars:
            self.bars[desc] = tqdm(total=total, desc=desc, unit=unit, leave=True)
        return self.bars[desc]

    @staticmethod
    def _move(bar: tqdm, done: int) -> None:
        bar.update(done - bar.n)
        if done == bar.total:
            bar.close()  # its rate stays its own

    def close(self) -> None:
        self.poll()
        for bar in self.bars.values():
            bar.close()


@contextlib.contextmanager
def shown(instance: dg.DagsterInstance, run_id: Callable[[], str | None]):
    """Follow the run whose id `run_id()` gives, in a background thread, while the caller executes it."""
    progress, stop = RunProgress(instance, run_id), threading.Event()

    def follow():
        while not stop.wait(POLL_SECONDS):
            progress.poll()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield progress
    finally:
        stop.set()
        thread.join()
        progress.close()
