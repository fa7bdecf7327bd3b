"""Appraisals per department or employee (R5.4, R5.5) and trends (R7.2) from the rollup."""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.db import Database
from app.core.errors import Forbidden, Unprocessable
from app.reporting import repository
from app.reporting.schemas import (
    AppraisalReport,
    AppraisalRow,
    BacklogRead,
    DefinitionRead,
    DefinitionRef,
    FigureRead,
    RectificationsRead,
    RootCauseCount,
    SatisfactionRead,
    TrendBucket,
    TrendReport,
)
from app.rules import appraisal as rules
from app.rules.appraisal import AppraisalGroup, Interval, TrendBy
from app.rules.kpis import KpiScope, kpi_scope
from app.rules.policy import Policy
from app.rules.recurrence import Original, in_window

TOP_ROOT_CAUSES: Final = 5
_DIM: Final = {AppraisalGroup.DEPARTMENT: "department", AppraisalGroup.EMPLOYEE: "assignee"}
# The rollup's measures each report reads (fewer columns, less to add up).
_STAGE_SUMS: Final = tuple(
    f"{stage}_{part}" for stage in rules.STAGES for part in ("met", "late", "overdue")
)
APPRAISAL_SUMS: Final = (
    "events",
    "closed",
    "closed_on",
    "responses",
    "score_sum",
    *(f"score_{k}" for k in rules.SCORES),
    "unreachable",
    *_STAGE_SUMS,
)
TREND_SUMS: Final = (
    "events",
    "closed_on",
    "cancelled_on",
    "resolved",
    "resolution_seconds",
    *_STAGE_SUMS,
)

Measures = dict[str, float]

# An event still `reported` this long after its report is folded into the rollup by the
# runner (`fold_reported`); the reports add the few newer ones from the event table. Most
# events are classified sooner (the respond stage runs hours), and their classification is
# what puts them in the rollup then, so the fold is work for a backlog only, never for intake.
FOLD_AFTER: Final = timedelta(hours=1)
FOLD_BATCH: Final = 500


async def fold_reported(session: AsyncSession, *, now: datetime) -> int:
    """One piece of the runner's `fold_reported_events` job (migration 7b4e1c9d2f58): up to
    FOLD_BATCH of the events still `reported` FOLD_AFTER after their report, folded into the
    rollup in one statement; returns how many. Safe on any number of runners at once."""
    return await repository.fold(session, reported_before=now - FOLD_AFTER, batch=FOLD_BATCH)


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """What every report is asked with: the database, the caller, the whole UTC days
    [start, end) and the time it is read at."""

    database: Database
    actor: Principal
    start: date
    end: date
    now: datetime


def _scope(actor: Principal) -> str | None:
    """R5.1, R5.4: supervisors and admins read every department; a department head only the
    events their department leads (and its orders and checks); anyone else 403."""
    scope = kpi_scope(actor.roles, actor.department)
    if scope is KpiScope.NONE:
        raise Forbidden("Appraisals and trends are for supervisors, admins and department heads")
    return actor.department if scope is KpiScope.OWN_DEPARTMENT else None


def _window(asked: ReportRequest) -> repository.Window:
    """The reads' window of a request: its period, if valid (422 otherwise), in the caller's
    scope (`_scope`)."""
    department = _scope(asked.actor)
    problem = rules.period_problem(asked.start, asked.end)
    if problem:
        raise Unprocessable(problem)
    return repository.Window(asked.start, asked.end, asked.now.date(), department)


@cache
def _reference(figure_id: str, version: int) -> DefinitionRef:
    """The reference to a definition, made once (a report repeats it in every bucket)."""
    return DefinitionRef(id=figure_id, version=version)


def _read(figure: rules.Figure) -> FigureRead:
    return FigureRead(
        value=figure.value,
        numerator=figure.numerator,
        denominator=figure.denominator,
        definition=_reference(figure.id, figure.version),
    )


def definitions(ids: Iterable[str]) -> list[DefinitionRead]:
    """The definitions of the figures shown, as the policy data declares them."""
    return [DefinitionRead.model_validate(rules.DEFINITIONS[figure_id]) for figure_id in ids]


def _counts(measures: Mapping[str, Any]) -> bool:
    """Whether any measure is not 0 (rows of the rollup may add up to nothing)."""
    return any(isinstance(v, int | float) and v for v in measures.values())


def _add(into: Measures, measures: Mapping[str, Any]) -> None:
    for name, amount in measures.items():
        if isinstance(amount, int | float):
            into[name] = into.get(name, 0.0) + amount


async def _measures(
    database: Database,
    window: repository.Window,
    *,
    group_by: AppraisalGroup,
    policy: Policy,
    now: datetime,
) -> dict[str | None, Measures]:
    """Every measure of every group: the rollup's, the recurrences charged, the spot-check
    answers and the rectification orders."""
    dim = _DIM[group_by]
    by_key: dict[str | None, Measures] = defaultdict(dict)
    async with database.report_connection() as connection:
        for row in await repository.sums(connection, window, dim=dim, measures=APPRAISAL_SUMS):
            _add(by_key[row.pop("key") or None], {k: v for k, v in row.items() if k != "bucket"})
        counted: set[Any] = set()
        for link in await repository.linked(connection, window):
            original = Original(
                event_id=link["original_id"],
                category=link["original_category"],
                closed_at=link["original_closed_at"],
                lead_department=link["department"],
            )
            # One recurrence per event: its link first, else the match the service found.
            if link["event_id"] not in counted and in_window(
                original,
                category=link["category"],
                reported_at=link["reported_at"],
                policy=policy.recurrence,
            ):
                counted.add(link["event_id"])
                key = link["department"] if dim == "department" else link["assignee"]
                _add(by_key[key], {"recurrences_charged": 1})
        for check in await repository.spot_checks(connection, window):
            key = check["department"] if dim == "department" else check["assignee"]
            _add(by_key[key], {"checks_passed": check["passed"], "checks_judged": check["judged"]})
        for order in await repository.rectifications(connection, window, now):
            key = order["department"] if dim == "department" else order["assignee"]
            issued, overdue = order["issued"], order["overdue"]
            _add(by_key[key], {"rectifications_issued": issued, "rectifications_overdue": overdue})
    return by_key


def _row(
    key: str | None,
    measures: Measures,
    policy: Policy,
    person: Mapping[str, Any] | None,
    *,
    employee: bool,
) -> AppraisalRow:
    """R5.4, R5.5: one department's or employee's figures and mark."""
    measures = {**measures, **rules.stage_totals(measures)}
    shown = {fid: rules.figure(fid, measures) for fid in rules.APPRAISAL_FIGURES}
    events = measures.get("events", 0)
    mark, reasons = rules.mark(
        {fid: f.value for fid, f in shown.items()}, events=events, policy=policy.appraisal
    )
    return AppraisalRow(
        key=key,
        name=None if person is None else person["name"],
        department=(person or {}).get("department") if employee else key,
        events=int(events),
        on_time_rate=_read(shown["on_time_rate"]),
        on_time_by_stage={s: _read(shown[f"on_time_rate.{s}"]) for s in rules.STAGES},
        satisfaction=SatisfactionRead(
            mean=_read(shown["satisfaction_mean"]),
            response_rate=_read(shown["satisfaction_response_rate"]),
            distribution={str(k): int(measures.get(f"score_{k}", 0)) for k in rules.SCORES},
            unreachable=int(measures.get("unreachable", 0)),
        ),
        recurrence_rate=_read(shown["recurrence_rate"]),
        rectifications=RectificationsRead(
            issued=int(measures.get("rectifications_issued", 0)),
            overdue=int(measures.get("rectifications_overdue", 0)),
            overdue_rate=_read(shown["rectification_overdue_rate"]),
        ),
        spot_check_pass_rate=_read(shown["spot_check_pass_rate"]),
        mark=mark,
        reasons=list(reasons),
    )


async def appraise(
    asked: ReportRequest, *, policy: Policy, group_by: AppraisalGroup
) -> AppraisalReport:
    """R5.4, R5.5: the appraisal figures of [start, end) per department or employee."""
    window = _window(asked)
    by_key = await _measures(
        asked.database, window, group_by=group_by, policy=policy, now=asked.now
    )
    people: dict[str, dict[str, Any]] = {}
    employee = group_by is AppraisalGroup.EMPLOYEE
    if employee:
        async with asked.database.report_connection() as connection:
            people = await repository.names(connection, [k for k in by_key if k])
    total: Measures = {}
    for measures in by_key.values():
        _add(total, measures)
    ordered = sorted(
        (k for k, measures in by_key.items() if _counts(measures)),
        key=lambda k: (k is None, k or ""),
    )
    return AppraisalReport(
        period_from=asked.start,
        period_to=asked.end,
        group_by=group_by,
        department_scope=window.department,
        policy_version=policy.version,
        definitions=definitions(rules.APPRAISAL_FIGURES),
        groups=[
            _row(k, by_key[k], policy, people.get(k or ""), employee=employee) for k in ordered
        ],
        totals=_row(None, total, policy, None, employee=employee),
    )


def _buckets(
    rows: list[dict[str, Any]], opening: Mapping[str | None, float], starts: list[date]
) -> tuple[list[TrendBucket], dict[str | None, float]]:
    """R7.2: every bucket and key of the period from the rollup's `rows`, the backlog carried
    from `opening`; and what is open at the end per key."""
    # A key whose rows add up to nothing (an event moved away from it) is not shown.
    cells = {(row["bucket"], row["key"] or None): row for row in rows if _counts(row)}
    shown = {k for _, k in cells} | {k or None for k, n in opening.items() if n}
    keys = sorted(shown, key=lambda k: k or "")
    open_now = {k: opening.get(k or "", 0.0) for k in keys}
    found: list[TrendBucket] = []
    for bucket in starts:
        for key in keys:
            measures: Mapping[str, Any] = cells.get((bucket, key), {})
            open_now[key] += (
                measures.get("events", 0)
                - measures.get("closed_on", 0)
                - measures.get("cancelled_on", 0)
            )
            totals = {**measures, **rules.stage_totals(measures)}
            found.append(
                TrendBucket(
                    start=bucket,
                    key=key,
                    reported=int(measures.get("events", 0)),
                    closed=int(measures.get("closed_on", 0)),
                    cancelled=int(measures.get("cancelled_on", 0)),
                    open_at_end=int(open_now[key]),
                    on_time_rate=_read(rules.figure("on_time_rate", totals)),
                    mean_resolution_hours=_read(rules.figure("mean_resolution_hours", totals)),
                )
            )
    return found, open_now


async def trends(asked: ReportRequest, *, interval: Interval, by: TrendBy) -> TrendReport:
    """R7.2: per bucket and key the events reported, closed and open at the end, the on-time
    rate and mean resolution hours; the top root causes; the backlog's direction."""
    window = _window(asked)
    async with asked.database.report_connection() as connection:
        rows = await repository.sums(
            connection, window, dim=by.value, unit=interval.value, measures=TREND_SUMS
        )
        opening = await repository.opening(connection, window, dim=by.value)
        causes = rows
        if by is not TrendBy.ROOT_CAUSE:
            causes = await repository.root_causes(connection, window)
    found, open_now = _buckets(rows, opening, rules.buckets(asked.start, asked.end, interval))
    root_causes: dict[str, float] = defaultdict(float)
    for row in causes:
        if row["key"]:
            root_causes[row["key"]] += row["events"]
    before, after = sum(opening.values()), sum(open_now.values())
    return TrendReport(
        period_from=asked.start,
        period_to=asked.end,
        interval=interval,
        by=by,
        department_scope=window.department,
        definitions=definitions(("on_time_rate", "mean_resolution_hours")),
        buckets=found,
        top_root_causes=[
            RootCauseCount(code=code, events=int(n))
            for code, n in rules.top(root_causes, TOP_ROOT_CAUSES)
        ],
        backlog=BacklogRead(
            opening=int(before), closing=int(after), direction=rules.backlog(before, after)
        ),
    )
