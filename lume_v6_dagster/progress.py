"""Training progress read from a run's event log: one bar per model (epoch / total, latest losses).

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
        match = EPOCH.search(entry.user_message or "") if entry.dagster_event is None else None
        if not match or not entry.step_key:
            return
        epoch, total, train, val = int(match[1]), int(match[2]), float(match[3]), float(match[4])
        bar = self.bars.get(entry.step_key)
        if bar is None:
            bar = self.bars[entry.step_key] = tqdm(total=total, desc=entry.step_key, unit="epoch", leave=True)
        bar.set_postfix(train=f"{train:.4f}", val=f"{val:.4f}", refresh=False)
        bar.update(epoch - bar.n)
        if epoch == total:
            bar.close()  # its time per epoch stays the model's own

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
