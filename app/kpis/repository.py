"""The KPI statements: the definitions of `app/rules/kpis.py` rendered as plain prepared SQL.

Every fact a definition names is resolved through the event table's own column definitions
(`Event.__table__.c`), so a renamed or missing column fails at import, not in a report. The
statement reads only columns that `ix_event_created_at_id` carries (its INCLUDE list,
`KPI_COLUMNS`), so a period's events are counted by one index-only range scan, never a scan of
the table nor a join (the event keeps its satisfaction score for this).
"""

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from app.events.models import Event
from app.rules.kpis import (
    GROUP_FACTS,
    MEASURES,
    PERIOD_FACT,
    SCOPE_FACT,
    Aggregate,
    Condition,
    Equals,
    IsTrue,
    KpiGroup,
    Measure,
    NotLater,
    Span,
)

_TABLE: Final[sa.Table] = Event.__table__  # type: ignore[assignment]
_ALIAS: Final = "e"


def column(fact: str) -> str:
    """The event column holding `fact`, qualified (KeyError: the table has no such column)."""
    return f"{_ALIAS}.{_TABLE.c[fact].name}"


def _condition(condition: Condition) -> str:
    match condition:
        case Equals(fact, value):
            if not value.isidentifier():  # vocabulary values only: never quoted input
                raise ValueError(f"not a vocabulary value: {value!r}")
            return f"{column(fact)} = '{value}'"
        case NotLater(fact, deadline):
            return f"{column(fact)} <= {column(deadline)}"
        case IsTrue(fact):
            return column(fact)


def _value(of: str | Span) -> str:
    if isinstance(of, Span):
        # date_part (double precision), not extract (numeric): twice as fast (bench/README.md).
        return f"date_part('epoch', {column(of.end)} - {column(of.start)})"
    return column(of)


def _measure(measure: Measure) -> str:
    if measure.aggregate is Aggregate.SUM:
        if measure.of is None:
            raise ValueError(f"{measure.name}: a sum needs a value")
        rendered = f"sum({_value(measure.of)})"
    else:
        rendered = "count(*)" if measure.of is None else f"count({_value(measure.of)})"
    if measure.where is not None:
        rendered += f" FILTER (WHERE {_condition(measure.where)})"
    return f"{rendered} AS {measure.name}"


def _counts_sql(group: KpiGroup) -> str:
    key = column(GROUP_FACTS[group])
    period = column(PERIOD_FACT)
    measures = ",\n       ".join(_measure(m) for m in MEASURES)
    return (
        f"SELECT {key}::text AS key,\n       {measures}\n"
        f"FROM {_TABLE.name} {_ALIAS}\n"
        f"WHERE {period} >= $1 AND {period} < $2"
        f" AND ($3::varchar IS NULL OR {column(SCOPE_FACT)} = $3)\n"
        f"GROUP BY {key}\n"
    )


# One statement per grouping: $1, $2 the period [from, to), $3 the department scope or NULL.
COUNTS_SQL: Final = {group: _counts_sql(group) for group in KpiGroup}


async def counts(
    connection: Any, group: KpiGroup, start: datetime, end: datetime, department: str | None
) -> list[Any]:
    """The measures per group of the events reported in [start, end) (in `department`'s lead
    when given)."""
    return list(await connection.fetch(COUNTS_SQL[group], start, end, department))
