"""The instance's patient PostgreSQL connection: how long it waits, and what it says when it gives up."""

import time

import pytest
import sqlalchemy

from lume_v6_dagster.postgres_storage import DatabaseGone, patient_connection


def test_a_database_that_stays_away_fails_after_the_patience_naming_it_without_its_password(monkeypatch):
    monkeypatch.setenv("LUME_SERVICE_PATIENCE", "2")
    engine = sqlalchemy.create_engine("postgresql+psycopg2://lume:not-this-secret@127.0.0.1:1/lume_v6", connect_args={"connect_timeout": 1})
    start = time.monotonic()
    with pytest.raises(DatabaseGone) as failure:
        with patient_connection(engine):
            pass
    waited = time.monotonic() - start
    assert 2 <= waited < 10, waited  # retried for the patience, not dagster-postgres' ~6 s nor forever
    message = str(failure.value)
    assert "127.0.0.1:1/lume_v6" in message and "LUME_SERVICE_PATIENCE" in message and "not-this-secret" not in message, message
