"""The KPI statements render the definitions of app/rules/kpis.py on the event table's own
columns, and read only what the covering index carries (issue 11, items 1 and 4)."""

import re

import pytest

from app.events.models import KPI_COLUMNS, Event
from app.kpis import repository
from app.rules import kpis
from app.rules.kpis import KpiGroup

# What `ix_event_created_at_id` holds: its keys and its INCLUDE list.
COVERED = frozenset({"created_at", "id", *KPI_COLUMNS})


def _facts() -> set[str]:
    facts = {kpis.PERIOD_FACT, kpis.SCOPE_FACT, *kpis.GROUP_FACTS.values()}
    for measure in kpis.MEASURES:
        if isinstance(measure.of, kpis.Span):
            facts |= {measure.of.start, measure.of.end}
        elif measure.of is not None:
            facts.add(measure.of)
        match measure.where:
            case kpis.Equals(fact, _) | kpis.IsTrue(fact):
                facts.add(fact)
            case kpis.NotLater(fact, deadline):
                facts |= {fact, deadline}
    return facts


def test_every_fact_is_an_event_column_the_covering_index_carries() -> None:
    """An index-only scan per period: a fact outside the index would read the table."""
    facts = _facts()
    assert facts <= set(Event.__table__.c.keys())
    assert facts <= COVERED, facts - COVERED


@pytest.mark.parametrize("group", list(KpiGroup))
def test_one_statement_per_grouping_with_every_measure(group: KpiGroup) -> None:
    sql = repository.COUNTS_SQL[group]
    assert re.findall(r" AS (\w+)", sql) == ["key", *(m.name for m in kpis.MEASURES)]
    assert f"GROUP BY {repository.column(kpis.GROUP_FACTS[group])}" in sql
    assert "FILTER (WHERE e.resolved_at <= e.resolve_by) AS resolved_on_time" in sql
    assert "e.status = 'closed'" in sql


def test_an_unknown_fact_fails_at_once() -> None:
    with pytest.raises(KeyError):
        repository.column("resolved_quickly")


def test_only_vocabulary_values_are_written_into_a_statement() -> None:
    measure = kpis.Measure("x", kpis.Aggregate.COUNT, where=kpis.Equals("status", "x' OR '1"))
    with pytest.raises(ValueError, match="vocabulary"):
        repository._measure(measure)
