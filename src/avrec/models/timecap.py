"""An optional wall-clock cap on a training loop.

Training stops on epochs, iterations and early stopping fixed by the config and the seed, so the
same data and seed give the same model on any machine. A cap in seconds (None: no cap) only
guards against a run that would take too long; when it stops a loop, the model is no longer
the one the config describes, so the stop is recorded in the fitted model
(``Recommender.time_capped_``, saved with it) and shown by the evaluation.
"""

from __future__ import annotations

import time


class TimeCap:
    """``seconds`` of wall-clock time (None: no cap) from the moment it is made, for the
    training loop ``what`` (a short name, e.g. ``"vae"``)."""

    def __init__(self, seconds: float | None, what: str):
        self.seconds = seconds
        self.what = what
        self.start = time.perf_counter()

    def reached(self) -> bool:
        """Whether the cap is set and its time has passed."""
        return self.seconds is not None and time.perf_counter() - self.start > self.seconds

    def note(self, epoch: int, epochs: int, within: bool = False) -> str:
        """The record of a stop after ``epoch`` (1-based) of ``epochs`` (``within``: part way
        through it)."""
        where = "in" if within else "after"
        return (
            f"{self.what}: stopped by the {self.seconds:g} s cap {where} epoch {epoch} of {epochs}"
        )

    def stop(self, epoch: int, epochs: int, within: bool, capped: list[str] | None) -> bool:
        """Whether training stops after ``epoch`` (0-based) of ``epochs`` because of the cap:
        it was reached ``within`` the epoch, or after it with epochs left to run. The stop is
        appended to ``capped``."""
        if not within and (epoch + 1 >= epochs or not self.reached()):
            return False
        if capped is not None:
            capped.append(self.note(epoch + 1, epochs, within))
        return True
