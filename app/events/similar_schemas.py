"""Similar events and suggestions (README, Search; R1.1, R5.4; product.md section 8)."""

import uuid
from datetime import datetime

from pydantic import Field

from app.core.schemas import ResponseModel
from app.events.schemas import EventDetail
from app.rules.vocabulary import Category, Status


class SimilarEventRead(ResponseModel):
    """An earlier event whose text is like this one's. To link it, send its `event_id` as
    `recurrence_of` (intake or classification)."""

    event_id: uuid.UUID
    ref: str
    title: str
    status: Status
    category: Category | None
    reported_at: datetime
    closed_at: datetime | None
    score: float = Field(
        description="How alike the two texts are, 0 to 1: Dice's coefficient of their search "
        "tokens (CJK bigrams and words)"
    )
    recurrence: bool = Field(
        description="Linked as `recurrence_of`, this event would count as its recurrence: the "
        "same category, closed within the policy's `recurrence.window_days` before this event "
        "was reported (R5.4)"
    )


class SimilarEvents(ResponseModel):
    items: list[SimilarEventRead]


class EventClassified(EventDetail):
    """The classified event and the earlier events of its category whose text is like its
    own (suggestions to link as `recurrence_of`)."""

    suggestions: list[SimilarEventRead] = Field(default_factory=list)
