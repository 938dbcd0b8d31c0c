"""Request and response bodies of the HTTP API (validated by pydantic; bad input -> 422)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

#: user and item ids: 1-256 characters, no control characters
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
Id = Field(min_length=1, max_length=256, pattern=ID_PATTERN)
ItemId = Annotated[str, Field(min_length=1, max_length=256)]
Label = Annotated[str, Field(max_length=200)]


class Strict(BaseModel):
    """Request bodies: unknown fields, non-finite numbers and values of another JSON type
    (``true`` or ``"0.5"`` for a number, ``1`` for a boolean) are refused (422); an integer
    is a number."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class RecommendationRequest(Strict):
    history: list[ItemId] = Field(default_factory=list, max_length=10_000)
    query: str | None = Field(default=None, max_length=2_000)
    k: int = Field(default=10, ge=1, le=500)
    kind: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, max_length=32)
    explain: bool = True
    exclude_seen: bool = True
    #: re-ranking: none | mmr | dpp | calibrated, its 0-1 knob, and a popularity penalty
    rerank: Literal["none", "mmr", "dpp", "calibrated"] = "none"
    diversity: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    debias: float = Field(default=0.0, ge=0, le=10, allow_inf_nan=False)


class Recommended(BaseModel):
    item_id: str
    title: str | None = None
    score: float
    explanation: str | None = None
    genres: list[str] = []
    kind: str | None = None


class RecommendationResponse(BaseModel):
    user_id: str | None
    #: names this list in the impression log (the ``impressions`` table)
    list_id: str | None = None
    items: list[Recommended]


#: the events an ad may have (``ad_id`` set; ``item_id`` is the video it ran next to)
AD_EVENTS = ("impression", "click", "skip")


class Event(Strict):
    user_id: str = Id
    item_id: str = Id
    event: Literal[
        "view", "play", "like", "dislike", "skip", "rating", "click", "purchase", "impression"
    ]
    value: float | None = Field(default=None, ge=0, le=10, allow_inf_nan=False)
    watch_fraction: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    request_id: str | None = Field(default=None, max_length=64)
    #: an event on an ad shown next to ``item_id`` (stored in ``ad_events``, not as feedback)
    ad_id: str | None = Field(default=None, min_length=1, max_length=256, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _ad_events(self) -> Event:
        if self.ad_id is not None and self.event not in AD_EVENTS:
            raise ValueError(f"an ad's event is one of {', '.join(AD_EVENTS)}, not {self.event!r}")
        if self.ad_id is None and self.event == "impression":
            raise ValueError("an impression is an ad's event: give its ad_id")
        return self


class AdSelect(Strict):
    user_id: str = Id
    #: the video being watched, which the ads would run next to
    context_item_id: str = Id
    slots: int = Field(default=1, ge=1, le=20)


class ChosenAd(BaseModel):
    ad_id: str
    advertiser: str
    text: str
    item_id: str | None = None
    image: str | None = None
    video: str | None = None
    bid: float
    p_engage: float
    expected_value: float
    reasons: list[str]


class AdSelection(BaseModel):
    user_id: str
    context_item_id: str
    ads: list[ChosenAd]
    #: ads eligible for this request (before the slots were filled)
    eligible: int
    #: ads left out, by reason (flight, targeting, brand_safety, already_watched,
    #: frequency_cap, budget, paced)
    excluded: dict[str, int]


class EventAck(BaseModel):
    id: int
    user_id: str
    polarity: int
    history_size: int
    request_id: str | None = None
    #: true when this answers a retry of an already stored request_id (status 200)
    replayed: bool = False


class ItemIn(Strict):
    item_id: str = Id
    title: str | None = Field(default=None, max_length=10_000)
    description: str | None = Field(default=None, max_length=100_000)
    genres: list[Label] = Field(default_factory=list, max_length=100)
    tags: list[Label] = Field(default_factory=list, max_length=1_000)
    kind: str | None = Field(default=None, max_length=64)
    year: int | None = Field(default=None, ge=1800, le=2200)
    language: str | None = Field(default=None, max_length=32)


class ItemBatch(Strict):
    items: list[ItemIn] = Field(min_length=1, max_length=1_000)


class Visitor(BaseModel):
    user_id: str
    #: only for a new visitor; a visitor resumed from its HttpOnly cookie is not shown it again
    token: str | None


class ConsentIn(Strict):
    #: may the person's events and interactions train models (false: opted out)
    training: StrictBool


class Consent(BaseModel):
    user_id: str
    training: bool
    #: when the choice was stored; null: never chosen (consent given by default)
    updated_at: str | None
