"""Recurrence (R1.1: the same problem does not happen again; R5.4: the recurrence rate).

A new event is a **recurrence** of an original when the original is of the same category, was
closed within `window_days` before the new event was reported, and either the new event is
linked to it (`recurrence_of`) or their texts match: Dice's coefficient of their search tokens
(`app.core.search_text.similarity`) at least `similarity_threshold`. It counts against the
department that closed the original, its lead department. The match is looked for at
classification, once the category is known, among the originals of the window, and stored on
the event (`recurrence_match_id`, `recurrence_match_score`); appraisals read both links.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class RecurrencePolicy:
    """The policy's `recurrence` section (R1.1, R5.4)."""

    window_days: int = 90
    similarity_threshold: float = 0.6

    @property
    def window(self) -> timedelta:
        """R5.4: how long before a new event an original may have been closed."""
        return timedelta(days=self.window_days)


DEFAULT_RECURRENCE: Final = RecurrencePolicy()


@dataclass(frozen=True, slots=True, kw_only=True)
class Original:
    """An earlier event as recurrence reads it."""

    event_id: UUID
    category: str | None
    closed_at: datetime | None
    lead_department: str | None


def window_start(reported_at: datetime, policy: RecurrencePolicy) -> datetime:
    """The earliest closing time of an original the new event may recur (R5.4)."""
    return reported_at - policy.window


def in_window(
    original: Original, *, category: str | None, reported_at: datetime, policy: RecurrencePolicy
) -> bool:
    """R1.1, R5.4: `original` is of `category` and closed in the window before the report."""
    return (
        category is not None
        and original.category == category
        and original.closed_at is not None
        and window_start(reported_at, policy) <= original.closed_at <= reported_at
    )


def matches(score: float, policy: RecurrencePolicy) -> bool:
    """Whether two texts are alike enough to call one a recurrence of the other (R5.4)."""
    return score >= policy.similarity_threshold


def best_match(
    scored: Iterable[tuple[Original, float]],
    *,
    category: str | None,
    reported_at: datetime,
    policy: RecurrencePolicy,
) -> tuple[Original, float] | None:
    """R5.4: the most similar original in the window at the threshold (then latest closed)."""
    best: tuple[Original, float] | None = None
    for original, score in scored:
        if not matches(score, policy) or not in_window(
            original, category=category, reported_at=reported_at, policy=policy
        ):
            continue
        assert original.closed_at is not None  # in_window
        if (
            best is None
            or score > best[1]
            or (score == best[1] and original.closed_at > (best[0].closed_at or original.closed_at))
        ):
            best = (original, score)
    return best


def charged_department(
    *,
    linked: Original | None,
    matched: Original | None,
    category: str | None,
    reported_at: datetime,
    policy: RecurrencePolicy,
) -> str | None:
    """R5.4: the lead department of the linked, else matched, original in the window."""
    for original in (linked, matched):
        if original is not None and in_window(
            original, category=category, reported_at=reported_at, policy=policy
        ):
            return original.lead_department
    return None
