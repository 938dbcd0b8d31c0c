"""Training from the service (admin): one round of the learning loop at a time, run as its own
``python -m avrec retrain`` process (lower CPU priority, its own interpreter, so serving keeps
its lock and a crash in training cannot take the service down).

A round trains a candidate on the database (catalog, interactions, feedback events), checks it
against the served version on what people liked since and promotes it only if it is not
significantly worse (:mod:`avrec.evaluation.retrain`); a service that follows the registry
(``--follow-registry``) then swaps to it without a restart. Jobs are kept in memory: their
results are also in the registry (``GET /api/admin/models``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

#: CPU niceness of the training process (serving comes first)
NICENESS = 10
#: lines of a job's output kept for its status
TAIL_LINES = 20


class JobConflict(RuntimeError):
    """A round is already running."""


@dataclass
class Job:
    id: str
    argv: list[str]
    started: float
    process: subprocess.Popen
    log: Path
    finished: float | None = None
    returncode: int | None = None
    lines: list[str] = field(default_factory=list)

    def describe(self) -> dict:
        if self.returncode is None and self.process.poll() is not None:
            self.returncode, self.finished = self.process.returncode, time.time()
        with contextlib.suppress(OSError):
            self.lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        status = (
            "running"
            if self.returncode is None
            else "succeeded"
            if self.returncode == 0
            else "failed"
        )
        return {
            "id": self.id,
            "status": status,
            "started": self.started,
            "finished": self.finished,
            "exit_code": self.returncode,
            "output": self.lines[-TAIL_LINES:],
        }


class TrainingJobs:
    """The service's training rounds: at most one running; the others' statuses kept."""

    def __init__(self, database_url: str, models_root: Path):
        self.database_url = database_url
        self.models_root = models_root
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, model: str | None = None, margin: float = 0.0, min_new_events: int = 1) -> Job:
        """Start one round; :class:`JobConflict` while another runs."""
        with self._lock:
            running = [j for j in self.jobs.values() if j.describe()["status"] == "running"]
            if running:
                raise JobConflict(f"training round {running[0].id} is still running")
            self.models_root.mkdir(parents=True, exist_ok=True)
            argv = [
                sys.executable,
                "-m",
                "avrec",
                "retrain",
                "--out-root",
                str(self.models_root),
                "--margin",
                repr(float(margin)),
                "--min-new-events",
                str(int(min_new_events)),
            ]
            if model is not None:
                argv += ["--model", model]
            job_id = uuid.uuid4().hex[:12]
            log = Path(tempfile.gettempdir()) / f"avrec-train-{job_id}.log"
            env = {**os.environ, "AVREC_DATABASE_URL": self.database_url}
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                )
            with contextlib.suppress(OSError, AttributeError):  # not on every platform
                os.setpriority(os.PRIO_PROCESS, process.pid, NICENESS)
            job = Job(job_id, argv, time.time(), process, log)
            self.jobs[job_id] = job
            return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def close(self, wait_s: float = 5.0) -> None:
        """Stop a running round (service shutdown)."""
        for job in self.jobs.values():
            if job.process.poll() is None:
                job.process.terminate()
                try:
                    job.process.wait(wait_s)
                except subprocess.TimeoutExpired:
                    job.process.kill()
