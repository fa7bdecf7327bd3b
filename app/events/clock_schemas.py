"""Response shapes of the stage clocks (product.md section 8; issue 12)."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from app.core.schemas import ResponseModel
from app.rules.clocks import Stage
from app.rules.policy import LevelKind


class SlaRead(ResponseModel):
    """The running clock of an event (R1.3.1): null when nothing is timed any more."""

    stage: Stage
    due_at: datetime
    remaining_seconds: int = Field(description="Seconds until due; negative once overdue")
    breached: bool
    breached_at: datetime | None


class NamedRead(ResponseModel):
    """Who a fired level named as having to act."""

    user_ids: list[uuid.UUID]
    roles: list[str]
    department: str | None


class LevelFiredRead(ResponseModel):
    level: str = Field(description="The ladder level's id in the policy, e.g. warn_50, breach")
    kind: LevelKind
    due_at: datetime = Field(description="When the level was due to fire")
    fired_at: datetime
    notify: list[NamedRead]


class SlaCycleRead(ResponseModel):
    """One cycle of one stage's clock; reopening starts a new cycle of the resolve stage."""

    stage: Stage
    cycle: int
    started_at: datetime
    due_at: datetime | None
    finished_at: datetime | None = Field(description="Null while the clock runs")
    met: bool | None = Field(
        description="Finished by its due time; null while running, or when the cycle was "
        "stopped by a cancel or a reopen"
    )
    breached: bool = Field(description="Past its due time (finished late, or still running)")
    levels_fired: list[LevelFiredRead]


class SlaCyclesRead(ResponseModel):
    cycles: list[SlaCycleRead]


WaitingFor = Literal[
    "classification",
    "assignment",
    "plan",
    "step",
    "resolution",
    "feedback",
    "feedback_decision",
    "review",
    "action",
    "verification",
    "escalation",
]


class QueueItem(ResponseModel):
    event_id: uuid.UUID
    ref: str
    title: str
    waiting_for: WaitingFor = Field(description="The action this item waits for from the caller")
    due_at: datetime | None
    breached: bool
    item_id: uuid.UUID | None = Field(
        description="The plan step, improvement action or feedback the item is about, if any"
    )


class QueueRead(ResponseModel):
    items: list[QueueItem]
