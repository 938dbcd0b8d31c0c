"""A person's control over their data: export everything stored about them, and their
consent to training. Their own visitor token (header or cookie) or an admin key
(``security.may_control``); 401/403 before the user is looked up, 404 for a user avrec knows
nothing of."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from avrec.service.schemas import Consent, ConsentIn
from avrec.service.security import is_visitor, may_control

router = APIRouter(prefix="/api", tags=["users"], dependencies=[Depends(may_control)])

#: personal data: never kept by a browser or proxy cache
NO_STORE = {"Cache-Control": "no-store"}


@router.get("/users/{user_id}/export")
def export(user_id: str, request: Request) -> JSONResponse:
    """Everything avrec stores about the user, and nothing of anyone else: their user row,
    interactions, feedback events and the lists shown to them (every column), consent, the
    ids the API showed them, and what the service derives from them (the profile it shows,
    its online state). See ``avrec.privacy.export_user``."""
    from avrec.privacy import export_user, online_view

    state = request.app.state.avrec
    if state.server.impressions is not None:  # lists still queued for the log are theirs too
        state.server.impressions.flush()
    online = None
    if state.knows(user_id):
        online = online_view(state.user_snapshot(user_id), state.items.facets, state.engine)
    data = export_user(user_id, state.engine, online)
    if data is None:
        raise HTTPException(404, f"unknown user {user_id!r}")
    return JSONResponse(data, headers=NO_STORE)


def _known(request: Request, user_id: str, token: str | None) -> bool:
    """The service or the database knows the user, or the caller is that very visitor (whose
    token proves the ID was issued here: a new visitor may choose before any event)."""
    from avrec.storage.users import stored_anywhere

    state = request.app.state.avrec
    return (
        state.knows(user_id)
        or is_visitor(request, user_id, token)
        or stored_anywhere(user_id, state.engine)
    )


def _answer(request: Request, user_id: str) -> JSONResponse:
    from avrec.storage.consent import consent_state

    stored = consent_state(request.app.state.avrec.engine, user_id)
    when = stored["updated_at"]
    body = Consent(
        user_id=user_id,
        training=stored["training"],
        updated_at=None if when is None else when.isoformat(),
    )
    return JSONResponse(body.model_dump(), headers=NO_STORE)


@router.get("/users/{user_id}/consent", response_model=Consent)
def get_consent(
    user_id: str, request: Request, x_visitor_token: str | None = Header(default=None)
) -> JSONResponse:
    """The person's consent to their data training models (true unless they opted out)."""
    if not _known(request, user_id, x_visitor_token):
        raise HTTPException(404, f"unknown user {user_id!r}")
    return _answer(request, user_id)


@router.post("/users/{user_id}/consent", response_model=Consent)
def set_consent(
    user_id: str,
    body: ConsentIn,
    request: Request,
    x_visitor_token: str | None = Header(default=None),
) -> JSONResponse:
    """``{"training": false}`` opts out: the person's events and interactions stay out of every
    training set read from the database from then on; their online state (their own
    recommendations adapting to their events) keeps working. ``true`` opts back in."""
    from avrec.storage.consent import set_training_consent

    if not _known(request, user_id, x_visitor_token):
        raise HTTPException(404, f"unknown user {user_id!r}")
    set_training_consent(request.app.state.avrec.engine, user_id, body.training)
    return _answer(request, user_id)
