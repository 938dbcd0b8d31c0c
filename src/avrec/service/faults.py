"""Database faults as answers, not crashes: an unreachable or failing database gives 503 with
``Retry-After``, a full disk 507, each with a JSON ``detail`` and no traceback. A write that
failed was not committed, so it was not acknowledged: the client may retry it (with the same
``request_id``). Reads that the in-memory state can serve use :func:`degrade` to keep working
without the database."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    NotSupportedError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from avrec.service.errors import error, error_response

log = logging.getLogger("avrec.service")
T = TypeVar("T")

#: seconds a client is asked to wait before retrying after a 503
RETRY_AFTER = 5
#: header set on answers served without the database (some fields left empty)
DEGRADED_HEADER = "X-Avrec-Degraded"
#: driver messages of a full disk (SQLite, PostgreSQL; psycopg's DiskFull is SQLSTATE 53100)
DISK_FULL = ("database or disk is full", "could not extend file", "no space left on device")
#: errors of the request or of the code, not of the database being away: left to answer 500
NOT_AVAILABILITY = (IntegrityError, ProgrammingError, DataError, NotSupportedError)


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == "53100":
        return True
    text = str(orig if orig is not None else exc).lower()
    return any(m in text for m in DISK_FULL)


def is_database_down(exc: BaseException) -> bool:
    """An error that says the database is unreachable, failing or busy (worth a retry)."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or not isinstance(exc, NOT_AVAILABILITY)


def _first_line(exc: BaseException) -> str:
    """The driver's message without the SQL and its parameters (they stay out of the logs)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unavailable(exc: BaseException) -> JSONResponse:
    """507 for a full disk, else 503 with ``Retry-After``. Not "nothing was stored": a commit
    cut off by a lost connection may have landed, which a retry with the same ``request_id``
    finds instead of storing the event twice."""
    if is_disk_full(exc):
        return error_response(
            507,
            [
                error(
                    [],
                    "the database's disk is full; the request was not "
                    "completed: retry once space is freed",
                    "insufficient_storage",
                )
            ],
        )
    return error_response(
        503,
        [
            error(
                [],
                "the database is unavailable; the request was not completed: retry later",
                "service_unavailable",
            )
        ],
        headers={"Retry-After": str(RETRY_AFTER)},
    )


async def _database_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, DBAPIError | PoolTimeout) and not is_database_down(exc):
        raise exc  # a bug or a constraint the route did not handle: the usual 500
    log.warning("%s %s: database error: %s", request.method, request.url.path, _first_line(exc))
    return unavailable(exc)


async def _os_error(request: Request, exc: Exception) -> Response:
    if not is_disk_full(exc):
        raise exc
    log.warning("%s %s: disk full: %s", request.method, request.url.path, exc)
    return unavailable(exc)


def register(app: FastAPI) -> None:
    """Install the handlers on ``app``."""
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(OSError, _os_error)


def degrade(response: Response, with_db: Callable[[], T], without_db: Callable[[], T]) -> T:
    """``with_db()``, or ``without_db()`` (marked with :data:`DEGRADED_HEADER`) while the
    database is unavailable: a read served from memory, less the parts only stored there."""
    try:
        return with_db()
    except (DBAPIError, PoolTimeout) as exc:
        if not is_database_down(exc):
            raise
        log.warning("serving without the database: %s", _first_line(exc))
        response.headers[DEGRADED_HEADER] = "database unavailable"
        return without_db()
