"""The business rules the service applies to every recommendation list, changed without a
restart: from the rules file (``avrec serve --rules FILE``; re-read when it changes, checked at
most once a second) or through ``PUT /api/admin/rules``.

A new rule set is parsed and compiled against the served catalog first and only then swapped
in (one reference assignment), so a request sees the old rules or the new ones, never a mix;
a bad one changes nothing (the API answers 422; a bad file keeps the rules in force and says
why in ``GET /api/admin/rules``). Rules are compiled again when the catalog changes (items
added, a model swapped in).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from avrec.rerank.rules import CompiledRules, Document, RulesError, compile_rules, read_rules

log = logging.getLogger("avrec.service")
#: seconds between two looks at the rules file's modification time
POLL_S = 1.0


@dataclass(frozen=True)
class Loaded:
    """Rules in force: the document, where it came from, when, and its compiled form for one
    catalog frame."""

    doc: Document
    origin: str  #: "file" or "api"
    at: dt.datetime
    version: int
    frame: pd.DataFrame | None = None
    compiled: CompiledRules | None = None


class RuleBook:
    def __init__(self, path: Path | None = None):
        self.path = path
        self._loaded: Loaded | None = None
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._polled = -float("inf")
        self._version = 0
        #: why the file's last change was not applied (None: it was)
        self.error: str | None = None

    # ---- loading ---------------------------------------------------------------------
    def load_file(self, frame: pd.DataFrame) -> None:
        """Read the rules file and compile it against ``frame``; a RulesError otherwise."""
        if self.path is None:
            raise RulesError("the service has no rules file (start it with --rules FILE)")
        mtime = self.path.stat().st_mtime
        doc = read_rules(self.path)
        self._swap(doc, "file", frame)
        self._mtime, self.error = mtime, None

    def replace(self, doc: Document, frame: pd.DataFrame) -> Loaded:
        """Put ``doc`` in force (compiled against ``frame`` first: a RulesError changes
        nothing)."""
        return self._swap(doc, "api", frame)

    def clear(self) -> None:
        with self._lock:
            self._version += 1
            self._loaded = None

    def _swap(self, doc: Document, origin: str, frame: pd.DataFrame) -> Loaded:
        compiled = compile_rules(doc, frame)
        with self._lock:
            self._version += 1
            self._loaded = Loaded(
                doc, origin, dt.datetime.now(dt.UTC), self._version, frame, compiled
            )
            return self._loaded

    # ---- serving ---------------------------------------------------------------------
    def current(self, frame: pd.DataFrame) -> CompiledRules | None:
        """The rules in force compiled for ``frame`` (the served catalog); None: no rules."""
        self._poll(frame)
        loaded = self._loaded
        if loaded is None or loaded.doc.rules.rules == []:
            return None
        if loaded.frame is frame and loaded.compiled is not None:
            return loaded.compiled
        try:
            compiled = compile_rules(loaded.doc, frame)
        except RulesError as exc:  # the catalog changed under them: keep the last ones
            self.error = f"the rules no longer fit the catalog: {exc}"
            return (
                loaded.compiled
                if loaded.compiled is not None and len(frame) == loaded.compiled.n_items
                else None
            )
        with self._lock:
            if self._loaded is loaded:
                self._loaded = Loaded(
                    loaded.doc, loaded.origin, loaded.at, loaded.version, frame, compiled
                )
        return compiled

    def _poll(self, frame: pd.DataFrame) -> None:
        """Re-read the file when its modification time changed (at most every POLL_S)."""
        if self.path is None or time.monotonic() - self._polled < POLL_S:
            return
        self._polled = time.monotonic()
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            self.error = f"{self.path}: {exc.strerror or exc}"
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            self._swap(read_rules(self.path), "file", frame)
            self.error = None
            log.info("rules reloaded from %s", self.path)
        except (RulesError, OSError) as exc:
            self.error = str(exc)
            log.warning("rules file changed but not applied: %s", exc)

    def describe(self) -> dict[str, Any]:
        """What ``GET /api/admin/rules`` shows."""
        loaded = self._loaded
        return {
            "rules": None
            if loaded is None
            else loaded.doc.rules.model_dump(mode="json", by_alias=True, exclude_none=True),
            "origin": None if loaded is None else loaded.origin,
            "file": None if self.path is None else str(self.path),
            "loaded_at": None if loaded is None else loaded.at.isoformat(timespec="seconds"),
            "version": self._version,
            "error": self.error,
        }
