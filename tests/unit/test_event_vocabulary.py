"""The words of the event's records are the enums of `rules.vocabulary` (issue 11 item 7):
request bodies accept exactly their values (the schemas spell them as literals, which keeps
the OpenAPI document and its messages as they were) and the tables' CHECKs allow exactly them."""

from enum import StrEnum
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from app.events.models import EventNote, Feedback, ImprovementAction, PlanStep, Satisfaction
from app.events.schemas import ActionUpdate, FeedbackDecision, FeedbackIn, NoteIn, StepUpdate
from app.rules.vocabulary import (
    ActionStatus,
    Audience,
    Decision,
    FeedbackOutcome,
    NoteKind,
    NoteVisibility,
    SatisfactionSource,
    StepStatus,
)


@pytest.mark.parametrize(
    ("model", "field", "accepted"),
    [
        (StepUpdate, "status", {StepStatus.DONE, StepStatus.DROPPED}),
        (NoteIn, "kind", set(NoteKind)),
        (NoteIn, "visibility", set(NoteVisibility)),
        (FeedbackIn, "audience", set(Audience)),
        (FeedbackDecision, "decision", set(Decision)),
        (ActionUpdate, "status", {ActionStatus.DONE}),
    ],
)
def test_request_bodies_take_the_vocabulary(
    model: type[BaseModel], field: str, accepted: set[StrEnum]
) -> None:
    assert set(get_args(model.model_fields[field].annotation)) == {a.value for a in accepted}


def _check(table: Any, name: str) -> str:
    found = [c for c in table.constraints if c.name == f"ck_{table.name}_{name}"]
    assert len(found) == 1, name
    return str(found[0].sqltext)


@pytest.mark.parametrize(
    ("table", "check", "vocabulary"),
    [
        (PlanStep.__table__, "status", StepStatus),
        (EventNote.__table__, "kind", NoteKind),
        (EventNote.__table__, "visibility", NoteVisibility),
        (Feedback.__table__, "audience", Audience),
        (Feedback.__table__, "decision", FeedbackOutcome),
        (Satisfaction.__table__, "source", SatisfactionSource),
        (ImprovementAction.__table__, "status", ActionStatus),
    ],
)
def test_tables_allow_exactly_the_vocabulary(
    table: Any, check: str, vocabulary: type[StrEnum]
) -> None:
    text = _check(table, check)
    assert all(f"'{word.value}'" in text for word in vocabulary)
    assert text.count("'") == 2 * len(vocabulary)
