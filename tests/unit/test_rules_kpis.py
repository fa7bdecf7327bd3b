"""The KPI definitions and who may read them (R5.1, R5.4; issue 11, item 4)."""

import pytest

from app.rules import kpis
from app.rules.kpis import KpiGroup, KpiScope, kpi_scope, period_problem, rate
from app.rules.vocabulary import Role


@pytest.mark.parametrize(
    ("roles", "department", "scope"),
    [
        ({Role.ADMIN}, None, KpiScope.ALL),
        ({Role.SUPERVISOR}, "SUP", KpiScope.ALL),
        ({Role.DEPT_HEAD}, "IT", KpiScope.OWN_DEPARTMENT),
        ({Role.DEPT_HEAD}, None, KpiScope.NONE),  # a head of no department heads nothing
        ({Role.DEPT_HEAD, Role.SUPERVISOR}, "IT", KpiScope.ALL),
        ({Role.HANDLER}, "IT", KpiScope.NONE),
        ({Role.REPORTER, Role.INTAKE_AGENT, Role.INTEGRATION}, "CS", KpiScope.NONE),
    ],
)
def test_kpi_scope(roles: set[Role], department: str | None, scope: KpiScope) -> None:
    assert kpi_scope(roles, department) is scope


def test_rate_is_none_without_a_base_and_rounded_otherwise() -> None:
    assert rate(0, 0) is None
    assert rate(1, 3) == 0.3333
    assert rate(2, 2) == 1.0


@pytest.mark.parametrize(
    ("days", "ok"), [(-1, False), (0, False), (0.5, True), (732, True), (732.01, False)]
)
def test_period_limits(days: float, ok: bool) -> None:
    assert (period_problem(days) is None) is ok


# ---- the definitions as data (issue 11, item 4) --------------------------------------------


def test_on_time_means_resolved_no_later_than_the_deadline() -> None:
    """R5.4: the on-time rate counts events resolved at or before `resolve_by`."""
    assert kpis.NotLater("resolved_at", "resolve_by") == kpis.ON_TIME
    on_time = next(m for m in kpis.MEASURES if m.name == "resolved_on_time")
    assert on_time.where is kpis.ON_TIME


def test_every_figure_is_made_of_defined_measures_with_an_id_and_version() -> None:
    measures = {m.name for m in kpis.MEASURES}
    ids = [kpis.OPEN.id, *(i.id for i in kpis.INDICATORS)]
    assert len(ids) == len(set(ids))
    for indicator in kpis.INDICATORS:
        assert {indicator.numerator, indicator.denominator} <= measures, indicator.id
        assert indicator.version >= 1
        assert indicator.clause.startswith("R5.4")
    assert {kpis.OPEN.whole, *kpis.OPEN.minus} <= measures
    assert set(kpis.GROUP_FACTS) == set(KpiGroup)


def test_figures_of_one_group() -> None:
    measures = {
        "events": 3,
        "resolved": 2,
        "closed": 1,
        "cancelled": 0,
        "resolved_on_time": 1,
        "resolution_seconds": 144_000.0,  # 40 hours over two events
        "recurrences": 1,
        "responses": 1,
        "score_sum": 4,
        "unreachable": 1,
    }
    assert kpis.figures(measures) == {
        "open": 2,
        "on_time_rate": 0.5,
        "mean_resolution_hours": 20.0,
        "recurrence_rate": 0.3333,
        "mean_score": 4.0,
    }


def test_figures_are_none_when_there_is_nothing_to_measure() -> None:
    empty = dict.fromkeys((m.name for m in kpis.MEASURES), 0) | {
        "resolution_seconds": None,
        "score_sum": None,
    }
    assert kpis.figures(empty) == {
        "open": 0,
        "on_time_rate": None,
        "mean_resolution_hours": None,
        "recurrence_rate": None,
        "mean_score": None,
    }


def test_totals_add_every_measure_up() -> None:
    one = dict.fromkeys((m.name for m in kpis.MEASURES), 1) | {"score_sum": None}
    two = dict.fromkeys((m.name for m in kpis.MEASURES), 2)
    total = kpis.totals([one, two])
    assert total == dict.fromkeys((m.name for m in kpis.MEASURES), 3) | {"score_sum": 2}
    assert kpis.totals([]) == dict.fromkeys((m.name for m in kpis.MEASURES), 0)
