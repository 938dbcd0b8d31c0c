"""Exceptions that carry where an input problem is (file, line, column)."""

from __future__ import annotations

from dataclasses import dataclass


class AvrecError(Exception):
    """Base class of avrec's expected errors (bad input, unknown IDs, missing artifacts)."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One problem found in an input: where it is and what is wrong."""

    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.column:
            where += f" (column {self.column!r})"
        return f"{where}: {self.message}"


class ValidationError(AvrecError):
    """Input failed validation; ``problems`` lists every problem found (capped)."""

    def __init__(self, problems: list[Problem], total: int | None = None):
        self.problems = problems
        self.total = total if total is not None else len(problems)
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {self.total - 50} more" if self.total > 50 else ""
        super().__init__(f"{self.total} problem(s) in the input:\n{shown}{more}")


class UnknownIdError(AvrecError, KeyError):
    """An item or user ID that the catalog or model does not know."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown id"


class ResourceError(AvrecError):
    """A task would need more memory than the machine has available (raised before trying)."""
