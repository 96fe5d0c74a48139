"""The shared instance's storage: dagster-postgres', waiting out a database restart.

dagster-postgres retries a connection for about 6 s and then raises, and a step whose event
write raises fails: a PostgreSQL restart (30 s) would end a night's training. Here a storage
that reached the database once (at creation, which still fails fast when the database is
down) retries every later connection for up to `deployment.service_patience()` seconds, then
fails naming the database. Each storage connects anew for every operation (dagster-postgres
keeps no pool), so the first connection after the restart works. A statement already running
when the database goes down still fails: only connecting is retried, never a write.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

import sqlalchemy
from dagster._core.storage.base_storage import DagsterStorage
from dagster_postgres import DagsterPostgresStorage, PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

from lume_v6_dagster import deployment

RETRY_SECONDS = 1.0
log = logging.getLogger(__name__)


class DatabaseGone(RuntimeError):
    """The instance's database stayed unreachable for longer than the patience."""


@contextlib.contextmanager
def patient_connection(engine: sqlalchemy.engine.Engine) -> Iterator[sqlalchemy.engine.Connection]:
    """A connection, retried every second while the database is unreachable, up to the service patience."""
    deadline = None
    while True:
        try:
            conn = engine.connect()
            break
        except sqlalchemy.exc.OperationalError as exc:
            now, limit = time.monotonic(), deployment.service_patience()
            if deadline is None:
                deadline = now + limit
                log.warning("the instance's database is unreachable; retrying for up to %.0f s: %s", limit, str(exc).splitlines()[0])
            if now > deadline:
                where = engine.url.render_as_string(hide_password=True)
                raise DatabaseGone(f"the instance's database ({where}) stayed unreachable for {limit:.0f} s (LUME_SERVICE_PATIENCE)") from exc
            time.sleep(RETRY_SECONDS)
    try:
        yield conn
    finally:
        conn.close()


class PatientRunStorage(PostgresRunStorage):
    def _connect(self):
        return patient_connection(self._engine)


class PatientEventLogStorage(PostgresEventLogStorage):
    def _connect(self):
        return patient_connection(self._engine)


class PatientScheduleStorage(PostgresScheduleStorage):
    def _connect(self):
        return patient_connection(self._engine)


class PatientPostgresStorage(DagsterPostgresStorage):
    """`storage: postgres` of dagster.yaml, as `storage: custom` of this class (same config)."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, inst_data=None, token_provider=None):
        self.postgres_url, self.should_autocreate_tables, self._inst_data = postgres_url, should_autocreate_tables, inst_data
        self._run_storage = PatientRunStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._event_log_storage = PatientEventLogStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._schedule_storage = PatientScheduleStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(pg_url_from_config(config_value), config_value.get("should_autocreate_tables", True), inst_data=inst_data,
                   token_provider=get_token_provider_from_config(config_value))
