"""Admin endpoints (API key with the 'admin' scope): server-side latency percentiles, the
business rules in force (read, replace, clear, reload from the file)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool

from avrec.rerank.rules import RulesError
from avrec.service.errors import ClientError
from avrec.service.security import require_scope

router = APIRouter(
    prefix="/api/admin", tags=["admin"], dependencies=[Depends(require_scope("admin"))]
)


@router.get("/latency")
def latency(request: Request, reset: bool = False) -> dict:
    """Exact percentiles of the last 200,000 durations per route (successful answers), measured
    in the server from request in to response out, and of ``event_to_state`` (an event received
    -> committed to the database -> the user's online state updated)."""
    samples = request.app.state.metrics.samples
    out = samples.summary()
    if reset:
        samples.clear()
    return out


def _rules_error(exc: RulesError) -> ClientError:
    """A bad rule set: 422 naming the entry (``loc`` under ``body``) and its line."""
    msg = str(exc)
    mark = f":{exc.line}: "
    if exc.line is not None and mark in msg:
        msg = f"line {exc.line}: {msg.split(mark, 1)[1]}"
    return ClientError(422, msg, ["body", *exc.loc], "rules_invalid")


@router.get("/rules")
def get_rules(request: Request) -> dict:
    """The business rules in force (``rules``: null when none), where they came from (the
    rules file or this API), when, a version counting every change, and why the rules file's
    last change was not applied (``error``)."""
    return request.app.state.rules.describe()


@router.put("/rules")
async def put_rules(
    request: Request,
    document: Annotated[
        dict[str, Any],
        Body(description='a rules document: {"version": 1, "rules": [...]} (docs/rules.md)'),
    ],
) -> dict:
    """Replace the business rules (a JSON rules document, docs/rules.md) without a restart:
    checked and compiled against the served catalog first, then swapped in at once. A bad
    document is a 422 naming the entry and its line in the body, and changes nothing."""
    from avrec.rerank.rules import parse_rules

    body = (await request.body()).decode("utf-8")  # the text itself: errors name its lines
    state = request.app.state.avrec
    try:
        doc = parse_rules(body, "body", "json")
        await run_in_threadpool(request.app.state.rules.replace, doc, state.items.frame)
    except RulesError as exc:
        raise _rules_error(exc) from None
    return request.app.state.rules.describe()


@router.delete("/rules")
def delete_rules(request: Request) -> dict:
    """No business rules from now on (until the rules file changes or new ones are PUT)."""
    request.app.state.rules.clear()
    return request.app.state.rules.describe()


@router.post("/rules/reload")
def reload_rules(request: Request) -> dict:
    """Read the rules file again now (409 when the service has none; 422 when it is bad,
    and the rules in force stay)."""
    book = request.app.state.rules
    if book.path is None:
        raise ClientError(409, "the service has no rules file (start it with --rules FILE)")
    try:
        book.load_file(request.app.state.avrec.items.frame)
    except RulesError as exc:
        raise _rules_error(exc) from None
    except OSError as exc:
        raise ClientError(409, f"{book.path}: {exc.strerror or exc}") from None
    return book.describe()
