"""Following the model registry: when another version is promoted (``avrec models promote`` or
``rollback``), the running service loads it beside the state serving now, brings it up to date
and swaps it in between two requests, without a restart.

The new state is built while the old one keeps answering (loading, catalog, index, replay of
the event log), in ways that leave the request threads the interpreter and the CPU: large
arrays (an item-item model's weights) are mapped from the file rather than copied, the others
read without holding the interpreter (``data.npz.read_npz``); a catalog file with the same
bytes as the serving model's is not parsed again (a new version of the same catalog), another
is parsed in chunks; and the catalog columns that answers read are built before the swap rather
than by the first requests; and one answer is computed on it before it serves (``prewarm``),
so that what a model builds on its first answer (the explanations' per-item genre, tag and
title lists, cached per catalog object: 60-90 ms for ten thousand items) is built here rather
than in the first request's time. Then, with event writes and deletions held for a moment
(``swap_lock``), it applies the events stored and the users deleted since its replay
(``ServiceState.catch_up``) and replaces the old state.

A request already running finishes on the state it started with. After a grace period the
follower thread closes the old state and releases it (``ServiceState.release``), a part at a
time: the state refers to itself and was frozen out of garbage collection, so without this it
would never be freed, and the release happens here rather than in a request thread.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from avrec.service.settings import ServiceSettings

if TYPE_CHECKING:
    from avrec.service.state import ServiceState

log = logging.getLogger("avrec.service")

#: seconds the replaced state stays open for requests that started on it
GRACE_S = 30.0
#: the scheduling priority (nice) of the thread that builds the next state (Linux)
BUILD_NICENESS = 10
#: the interpreter's thread switch interval while the next state is built (default 0.005 s)
SWITCH_INTERVAL_S = 0.0005
#: catalog lines parsed at a time while the next state is built (one parse of the whole
#: catalog would hold the interpreter from the request threads throughout)
CATALOG_CHUNK = 256
#: saved arrays of at least this many bytes (an item-item model's weights) are mapped from the
#: file rather than copied while the next state is built: the build then costs the request
#: threads no CPU for them, and a request reads only the rows it scores
MAP_FROM = 16 << 20


@contextlib.contextmanager
def _quiet_build():
    """While the next state is built beside the serving one: no garbage collection (a full
    collection would pause the request threads over the whole heap; the new state's objects
    are frozen afterwards, as the first state's are at start) and a shorter GIL switch
    interval, so request threads get the interpreter back sooner from the builder."""
    interval = sys.getswitchinterval()
    enabled = gc.isenabled()
    gc.disable()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        gc.freeze()
        if enabled:
            gc.enable()


def build_state(old: ServiceState, settings: ServiceSettings, folder: Path) -> ServiceState:
    """The state that will serve the model saved in ``folder``, built beside ``old`` (its
    engine) while ``old`` answers requests."""
    from avrec.models.base import CATALOG, Recommender
    from avrec.service.state import ServiceState

    settings = replace(settings, model_dir=Path(folder))
    with _quiet_build():
        same = _same_bytes(Path(old.settings.model_dir) / CATALOG, Path(folder) / CATALOG)
        model = Recommender.load(
            folder,
            catalog_chunk=CATALOG_CHUNK,
            map_from=MAP_FROM,
            catalog=old.model.catalog.copy(deep=False)
            if same and old.model.catalog is not None
            else None,
        )
        new = ServiceState(model, old.engine, settings.media_root, settings)
        new.items.warm()  # the catalog columns answers read, not built by the first requests
        prewarm(new)
    return new


def prewarm(state: ServiceState) -> None:
    """Answer one request on ``state`` (a known user's recommendations, explained, as the
    service asks for them) so that the work a model does once, on its first answer, is done
    by the thread calling this rather than by the first request: cached per-item lists of the
    explanations, popularity counts, the first pages of mapped arrays."""
    from avrec.service.recommend import recommend

    user_vocab, item_vocab, _ = state.model.fitted_parts()
    user = next((str(u) for u in user_vocab.ids[:100] if state.knows(str(u))), None)
    history = None if user is not None else [str(i) for i in item_vocab.ids[:1]]
    recommend(state, user, history, None, max(10, state.server.depth), model_user=user)


def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two files hold the same bytes (a new version trained on the same catalog: its
    catalog is the serving one's, and is not parsed again)."""
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:  # hashing releases the interpreter
            return (
                hashlib.file_digest(fa, "sha256").digest()
                == hashlib.file_digest(fb, "sha256").digest()
            )
    except OSError:
        return False


def swap_to(app: FastAPI, folder: Path) -> str:
    """Serve the model saved in ``folder``; returns its version id. The replaced state waits
    in ``app.state.retired`` for :func:`release_retired`."""
    old = app.state.avrec
    new = build_state(old, app.state.settings, folder)
    rules = getattr(app.state, "rules", None)
    if rules is not None:
        rules.current(new.items.frame)  # compiled for the new catalog here, not by a request
    with app.state.swap_lock.write():
        new.catch_up()
        app.state.avrec = new
    retired(app).append((time.monotonic() + GRACE_S, old))
    log.info("now serving %s (was %s)", new.model_version, old.model_version)
    return new.model_version


def retired(app: FastAPI) -> deque[tuple[float, ServiceState]]:
    """The replaced states, each with the time after which no request runs on it any more."""
    if not hasattr(app.state, "retired"):
        app.state.retired = deque()
    return app.state.retired


def release_retired(app: FastAPI, everything: bool = False) -> int:
    """Close and release the replaced states whose grace period is over (``everything``: all
    of them, at shutdown); returns how many."""
    queue, done = retired(app), 0
    while queue and (everything or queue[0][0] <= time.monotonic()):
        _, old = queue.popleft()
        old.close()
        old.release()
        done += 1
    return done


def check(app: FastAPI) -> str | None:
    """Swap to the promoted version if it is not the one served; returns the new version."""
    from avrec.storage import registry

    current = registry.promoted(app.state.avrec.engine)
    if current is None or current.version == app.state.avrec.model_version:
        return None
    return swap_to(app, current.path)


class Follower:
    """A background thread that checks the registry every ``registry_poll_s`` seconds."""

    def __init__(self, app: FastAPI, settings: ServiceSettings):
        self.app, self.every = app, settings.registry_poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="avrec-follow", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # building the next state competes with the requests for the CPU: give way to them
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BUILD_NICENESS)
        while not self._stop.wait(self.every):
            try:
                check(self.app)
            except Exception:  # a bad version must not stop the service: keep serving, log
                log.exception("could not switch to the promoted model version")
            release_retired(self.app)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        release_retired(self.app, everything=True)
