"""Which database errors the service answers as 503 (unavailable, retry) or 507 (disk full), and
which stay errors of the code (500). The drivers' own exception classes, wrapped as SQLAlchemy
wraps them; the real faults are in tests/integration/test_faults.py."""

from __future__ import annotations

import errno
import sqlite3

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from avrec.service.faults import is_database_down, is_disk_full, unavailable


def wrapped(cls, orig: Exception, invalidated: bool = False):
    return cls(
        "INSERT INTO feedback_events ...",
        {"user_id": "u1"},
        orig,
        connection_invalidated=invalidated,
    )


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(OperationalError, sqlite3.OperationalError("database or disk is full")),
        wrapped(
            OperationalError,
            psycopg.errors.DiskFull('could not extend file "base/1/2": No space left on device'),
        ),
        OSError(errno.ENOSPC, "No space left on device"),
    ],
)
def test_a_full_disk_answers_507(exc):
    assert is_disk_full(exc)
    res = unavailable(exc)
    assert res.status_code == 507 and b"full" in res.body and b"INSERT" not in res.body


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(OperationalError, psycopg.OperationalError("connection refused"), invalidated=True),
        wrapped(OperationalError, psycopg.errors.AdminShutdown("terminating connection")),
        wrapped(OperationalError, sqlite3.OperationalError("database is locked")),
    ],
)
def test_an_unavailable_database_answers_503_with_retry_after(exc):
    assert is_database_down(exc) and not is_disk_full(exc)
    res = unavailable(exc)
    assert res.status_code == 503 and int(res.headers["Retry-After"]) > 0
    assert b"u1" not in res.body and b"INSERT" not in res.body  # no SQL, no parameters


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(IntegrityError, sqlite3.IntegrityError("UNIQUE constraint failed")),
        wrapped(ProgrammingError, sqlite3.ProgrammingError("no such column")),
        OSError(errno.EACCES, "Permission denied"),
    ],
)
def test_errors_of_the_code_are_not_called_an_outage(exc):
    assert not is_database_down(exc) and not is_disk_full(exc)
