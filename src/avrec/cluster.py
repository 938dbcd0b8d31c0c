"""Dask for avrec's heavy batch work (evaluation runs, batch recommendation).

:func:`dask_client` gives a ``distributed.Client``: to a running scheduler when an address is
given (``--cluster tcp://HOST:PORT`` or ``$AVREC_DASK_SCHEDULER``), else to a ``LocalCluster``
started in this process (one single-threaded worker process per core, bound to 127.0.0.1, no
dashboard) and closed on exit. Callers that get ``None`` run in-process, as before.

Workers run tasks with one BLAS/OpenMP thread (distributed's default for worker processes). A
run's numbers equal the single-process run's when that also uses one thread
(``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1``): the tasks are the same functions of the same
inputs and seeds, gathered back in submission order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

#: environment variable naming a running scheduler (``tcp://HOST:PORT``)
SCHEDULER_ENV = "AVREC_DASK_SCHEDULER"
#: ``--cluster`` value that starts a LocalCluster
LOCAL = "local"


#: the client of the innermost :func:`dask_client` block (None: in-process)
_ACTIVE: ContextVar[Client | None] = ContextVar("avrec_dask_client", default=None)


class ClusterError(ValueError):
    """A cluster address or worker count that cannot work (a user's mistake)."""


def cluster_address(cluster: str | None, workers: int | None) -> str | None:
    """What to connect to: ``"local"``, a scheduler address, or None (in-process).

    ``cluster`` wins, then ``$AVREC_DASK_SCHEDULER``; ``workers`` above 1 alone asks for a
    LocalCluster."""
    if workers is not None and workers < 1:
        raise ClusterError(f"--workers must be at least 1, got {workers}")
    chosen = (cluster or os.environ.get(SCHEDULER_ENV) or "").strip()
    if not chosen:
        return LOCAL if workers and workers > 1 else None
    if chosen != LOCAL and "://" not in chosen:
        raise ClusterError(
            f"cluster {chosen!r}: give 'local' or a scheduler address such as tcp://127.0.0.1:8786"
        )
    return chosen


@contextmanager
def dask_client(address: str | None, workers: int | None = None) -> Iterator[Client | None]:
    """A client for ``address`` (see :func:`cluster_address`), None for in-process work."""
    if address is None:
        yield None
        return
    from distributed import Client, LocalCluster

    if address == LOCAL:
        n = workers or os.cpu_count() or 1
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
            _activated(client),
        ):
            yield client
        return
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client, _activated(client):
        yield client


@contextmanager
def _activated(client: Client) -> Iterator[None]:
    token = _ACTIVE.set(client)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active_client() -> Client | None:
    """The client of the :func:`dask_client` block this code runs in (None outside one, and
    inside a Dask task: a task's own work stays in its worker)."""
    return _ACTIVE.get()


def map_chunks(fn: Callable[..., Any], chunks: Sequence[Any], *shared: Any) -> list[Any]:
    """``[fn(chunk, *shared) for chunk in chunks]``: as Dask tasks inside a
    :func:`dask_client` block (``shared`` sent to every worker once), else in this process.
    Results come back in ``chunks`` order."""
    client = active_client()
    if client is None or len(chunks) < 2:
        return [fn(chunk, *shared) for chunk in chunks]
    refs = client.scatter(list(shared), broadcast=True, hash=False) if shared else []
    futures = [client.submit(fn, chunk, *refs, pure=False) for chunk in chunks]
    return client.gather(futures)
