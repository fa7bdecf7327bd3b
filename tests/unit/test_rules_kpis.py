"""The KPI definitions and who may read them (R5.1, R5.4)."""

import pytest

from app.rules.kpis import KpiScope, kpi_scope, period_problem, rate
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
