"""Spot checks and rectification orders (R5.1-R5.3; issue 14 items 1 and 2).

Route -> this service (authorise, call the pure rules in app/rules/supervision.py, change,
record the order's history and outbox message, flush) -> app/supervision/repository.py (SQL).
Every function takes the request's context (session, caller, now; `app.core.context`).
Services never commit; the request's transaction does.
"""

import dataclasses
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any, Final

from app.core.context import RequestContext
from app.core.db import uuid7
from app.core.errors import (
    Forbidden,
    GateNotMet,
    NotFound,
    TransitionNotAllowedError,
    Unprocessable,
)
from app.core.jsonable import jsonable
from app.core.pagination import Cursor, decode_cursor, page_of
from app.core.preconditions import check_if_match
from app.core.responses import from_row
from app.outbox.writer import publish
from app.rules import supervision as rules
from app.rules.kpis import period_problem
from app.rules.supervision import Clocks, EventFacts, JudgedAnswer, Member, RiskFacts
from app.rules.vocabulary import Answer, OrderAction, OrderStatus, Question, SpotCheckStatus, Status
from app.supervision import repository
from app.supervision import schemas as api
from app.supervision.models import Rectification, SpotCheck, SpotCheckAnswer, SpotCheckItem

DRAW_METHOD: Final = (
    "Stratified by department and severity; each stratum gives at least min_per_stratum "
    "events (or all it has), the rest of the sample is shared among the strata in proportion "
    "to their total risk weight (largest remainder); within a stratum, weighted sampling "
    "without replacement (Efraimidis-Spirakis) with random numbers from SHA-256 of "
    "'seed:event_id'. The same seed over the frozen population gives the same sample."
)
# What an outbox message and a history entry say of an order (R7.1).
SNAPSHOT: Final = ("id", "status", "version", "department", "due_at", "spot_check_id", "event_id")


def _require_supervisor(context: RequestContext, what: str) -> None:
    """R5.1: spot checks and issuing, verifying and closing orders are the supervisors'."""
    if not rules.may_supervise(context.actor.roles):
        raise Forbidden(f"Only supervisors and admins may {what} (R5.1)")


def _newest_first(row: SpotCheck | Rectification) -> Cursor:
    return Cursor(row.created_at, row.id)


# ---- spot checks (R5.2) --------------------------------------------------------------------


def _clocks(row: Mapping[str, Any]) -> Clocks:
    """An event's clocks from its row (the repository names the columns as the fields)."""
    values = {field.name: row[field.name] for field in fields(Clocks)}
    values["status"] = Status(row["status"])
    values["steps_finished_late"] = row["steps_finished_late"] or 0
    return Clocks(**values)


def _member(context: RequestContext, row: Mapping[str, Any]) -> Member:
    """One event of the population with its risk factors and weight (R5.2)."""
    severity = row["severity"]
    factors = rules.risk_factors(
        RiskFacts(
            severity=severity,
            breached=rules.breached(_clocks(row), context.now),
            reopened=bool(row["reopened"]),
            satisfaction_score=row["satisfaction_score"],
        )
    )
    return Member(
        event_id=row["id"],
        department=row["department"],
        severity=severity,
        weight=rules.risk_weight(factors, rules.DEFAULT_RISK_WEIGHTS),
        risk=factors,
    )


def _facts(row: Mapping[str, Any]) -> EventFacts:
    return EventFacts(
        clocks=_clocks(row),
        severity_overridden=bool(row["severity_overridden"]),
        routing_overridden=bool(row["routing_overridden"]),
        reopened=row["reopened"],
        feedback_returned=row["feedback_returned"],
        recurrences=row["recurrences"],
        satisfaction_score=row["satisfaction_score"],
        satisfaction_unreachable=row["satisfaction_unreachable"],
    )


async def _population(
    context: RequestContext, data: api.SpotCheckCreate
) -> tuple[repository.PopulationFilter, list[Member]]:
    """R5.2: the events of the period and the filter (422 when none or too many), weighed."""
    problem = period_problem((data.period_to - data.period_from).total_seconds() / 86_400)
    if problem:
        raise Unprocessable(problem)
    flt = repository.PopulationFilter(
        start=data.period_from,
        end=data.period_to,
        statuses=[s.value for s in (data.statuses or rules.DEFAULT_STATUSES)],
        categories=[c.value for c in data.categories or ()],
        departments=list(data.departments or ()),
        severities=[s.value for s in data.severities or ()],
    )
    rows = await repository.population(context.session, flt, limit=rules.MAX_POPULATION + 1)
    if len(rows) > rules.MAX_POPULATION:
        raise Unprocessable(
            f"More than {rules.MAX_POPULATION} events match; narrow the period or the filter"
        )
    if not rows:
        raise Unprocessable("No event matches the period and the filter: nothing to sample")
    return flt, [_member(context, row) for row in rows]


async def create_spot_check(
    context: RequestContext, data: api.SpotCheckCreate
) -> api.SpotCheckDetail:
    """R5.2: freeze the population of the filter, draw a stratified, risk-weighted, seeded
    sample from it and pre-fill the three questions of every sampled event from its facts."""
    _require_supervisor(context, "run spot checks")
    flt, members = await _population(context, data)
    seed = data.seed if data.seed is not None else secrets.randbelow(2**53)
    minimum = (
        data.min_per_stratum if data.min_per_stratum is not None else rules.DEFAULT_MIN_PER_STRATUM
    )
    size = rules.sample_size(len(members), size=data.sample_size, rate=data.sample_rate)
    drawn = rules.draw(members, size=size, min_per_stratum=minimum, seed=seed)
    if drawn.size > rules.MAX_SAMPLE_SIZE:
        raise Unprocessable(
            f"The strata's minimums need {drawn.size} events, more than "
            f"{rules.MAX_SAMPLE_SIZE}: lower min_per_stratum or narrow the filter"
        )
    session, now = context.session, context.now
    check = SpotCheck(
        id=uuid7(),
        status=SpotCheckStatus.OPEN,
        period_from=data.period_from,
        period_to=data.period_to,
        population_filter={
            "statuses": flt.statuses,
            "categories": flt.categories,
            "departments": flt.departments,
            "severities": flt.severities,
        },
        seed=seed,
        requested_size=data.sample_size,
        requested_rate=data.sample_rate,
        min_per_stratum=minimum,
        risk_weights={k.value: v for k, v in rules.DEFAULT_RISK_WEIGHTS.items()},
        population_size=len(members),
        sample_size=drawn.size,
        strata=[jsonable(dataclasses.asdict(s)) for s in drawn.strata],
        created_by=context.actor.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(check)
    await session.flush()
    await repository.freeze_population(session, check.id, members)
    await _add_items(context, check, drawn.members)
    return await _detail(context, check)


async def _add_items(context: RequestContext, check: SpotCheck, sampled: Sequence[Member]) -> None:
    """R5.2: the sampled events as the check's items, each with its three pre-filled answers."""
    session = context.session
    facts = await repository.event_facts(session, [m.event_id for m in sampled])
    items = [
        SpotCheckItem(
            id=uuid7(),
            spot_check_id=check.id,
            event_id=member.event_id,
            position=position,
            stratum=member.stratum,
            department=member.department,
            severity=member.severity,
            weight=member.weight,
            risk=[factor.value for factor in member.risk],
        )
        for position, member in enumerate(sampled, start=1)
    ]
    session.add_all(items)
    await session.flush()
    for item in items:
        for question, filled in rules.prefill(_facts(facts[item.event_id]), context.now).items():
            session.add(
                SpotCheckAnswer(
                    item_id=item.id,
                    question=question,
                    prefilled=filled.answer,
                    findings=list(filled.findings),
                    facts=jsonable(dict(filled.facts)),
                )
            )
    await session.flush()


def _item(
    item: SpotCheckItem, answers: Sequence[SpotCheckAnswer], event: Mapping[str, Any]
) -> api.SpotCheckItemRead:
    by_question = {a.question: a for a in answers}
    return from_row(
        api.SpotCheckItemRead,
        item,
        ref=event["ref"],
        title=event["title"],
        judged=all(by_question[q].answer is not None for q in Question),
        **{q.value: api.QuestionRead.model_validate(by_question[q]) for q in Question},
    )


async def _detail(context: RequestContext, check: SpotCheck) -> api.SpotCheckDetail:
    session = context.session
    items = await repository.items_of(session, check.id)
    answers = await repository.answers_of(session, [i.id for i in items])
    events = await repository.events_brief(session, {i.event_id for i in items})
    return from_row(
        api.SpotCheckDetail,
        check,
        draw=from_row(api.DrawRead, check, method=DRAW_METHOD),
        items=[_item(i, answers[i.id], events[i.event_id]) for i in items],
        rectification_ids=await repository.order_ids_of_check(session, check.id),
    )


async def get_spot_check(context: RequestContext, spot_check_id: uuid.UUID) -> api.SpotCheckDetail:
    """R5.2: one spot check with its items and how it was drawn."""
    _require_supervisor(context, "read spot checks")
    check = await repository.get_spot_check(context.session, spot_check_id)
    if check is None:
        raise NotFound(f"No spot check {spot_check_id}")
    return await _detail(context, check)


async def list_spot_checks(
    context: RequestContext, *, cursor: str | None, limit: int
) -> api.SpotCheckPage:
    """R5.2: spot checks, newest first, one keyset page."""
    _require_supervisor(context, "read spot checks")
    rows = await repository.list_spot_checks(
        context.session, cursor=decode_cursor(cursor) if cursor else None, limit=limit
    )
    page, next_cursor = page_of(rows, limit, _newest_first)
    return api.SpotCheckPage(
        items=[api.SpotCheckRead.model_validate(c) for c in page], next_cursor=next_cursor
    )


async def _open_check(context: RequestContext, spot_check_id: uuid.UUID, action: str) -> SpotCheck:
    """The check, locked so judging and completing serialise; 409 once it is completed."""
    check = await repository.get_spot_check(context.session, spot_check_id, for_update=True)
    if check is None:
        raise NotFound(f"No spot check {spot_check_id}")
    if check.status is not SpotCheckStatus.OPEN:
        raise TransitionNotAllowedError(check.status.value, action, [], what="a spot check")
    return check


async def judge_item(
    context: RequestContext,
    spot_check_id: uuid.UUID,
    item_id: uuid.UUID,
    data: api.ItemJudgement,
) -> api.SpotCheckItemRead:
    """R5.2: the checker confirms a pre-filled answer or overturns it with a note (422
    without one)."""
    _require_supervisor(context, "judge spot checks")
    session = context.session
    await _open_check(context, spot_check_id, "judge")
    item = await repository.item_of(session, spot_check_id, item_id)
    if item is None:
        raise NotFound(f"No item {item_id} in spot check {spot_check_id}")
    answers = (await repository.answers_of(session, [item.id]))[item.id]
    by_question = {a.question: a for a in answers}
    given = data.given()
    errors = [
        {
            "field": f"body.{question.value}.note",
            "message": f"Overturning the pre-filled answer "
            f"({by_question[question].prefilled.value}) needs a note saying why",
            "code": "overturn_needs_note",
        }
        for question, judged in given.items()
        if rules.overturn_needs_note(by_question[question].prefilled, judged.answer, judged.note)
    ]
    if errors:
        raise Unprocessable("; ".join(e["message"] for e in errors), errors=errors)
    for question, judged in given.items():
        row = by_question[question]
        row.answer, row.note = judged.answer, judged.note
        row.judged_by, row.judged_at = context.actor.user_id, context.now
    await session.flush()
    events = await repository.events_brief(session, [item.event_id])
    return _item(item, answers, events[item.event_id])


async def complete(context: RequestContext, spot_check_id: uuid.UUID) -> api.SpotCheckDetail:
    """R5.2, R5.3: complete a check once every answer is judged (409 `missing` otherwise);
    each failed item becomes an order on the department responsible for it, due in the
    policy's rectification deadline."""
    _require_supervisor(context, "complete spot checks")
    session, now = context.session, context.now
    check = await _open_check(context, spot_check_id, "complete")
    items = await repository.items_of(session, check.id)
    answers = await repository.answers_of(session, [i.id for i in items])
    missing = [
        f"item.{item.id}.{answer.question.value}"
        for item in items
        for answer in sorted(answers[item.id], key=lambda a: list(Question).index(a.question))
        if answer.answer is None
    ]
    if missing:
        raise GateNotMet(missing, f"{len(missing)} answers are not judged yet")
    events = await repository.events_brief(session, {i.event_id for i in items})
    for item in items:
        event = events[item.event_id]
        judged = {
            a.question: JudgedAnswer(answer=a.answer or Answer.NOT_APPLICABLE, note=a.note)
            for a in answers[item.id]
        }
        for draft in rules.order_drafts(
            judged,
            event_ref=event["ref"],
            intake_department=event["intake_department"],
            lead_department=event["lead_department"],
        ):
            await _issue(
                context,
                Rectification(
                    department=draft.department,
                    demand=draft.demand,
                    due_at=rules.order_due(now, rules.RECTIFICATION_DEADLINE),
                    questions=[q.value for q in draft.questions],
                    spot_check_id=check.id,
                    item_id=item.id,
                    event_id=item.event_id,
                ),
            )
    check.status = SpotCheckStatus.COMPLETED
    check.completed_at, check.completed_by, check.updated_at = now, context.actor.user_id, now
    await session.flush()
    return await _detail(context, check)


# ---- rectification orders (R5.3) -----------------------------------------------------------


def order_read(order: Rectification, context: RequestContext) -> api.RectificationRead:
    return from_row(
        api.RectificationRead,
        order,
        overdue=rules.order_overdue(order.status, order.due_at, context.now),
        allowed_actions=list(rules.order_actions_from(order.status)),
    )


def _snapshot(order: Rectification) -> dict[str, Any]:
    """What an outbox message and a history entry say of the order."""
    return {name: getattr(order, name) for name in SNAPSHOT}


async def _record(
    context: RequestContext,
    order: Rectification,
    *,
    action: str,
    message: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    note: str | None = None,
) -> None:
    """R5.3, R7.1: the order's history entry (the first when nothing was `before`) and its
    `rectification.<message>` outbox message, in the request's transaction."""
    session, actor_id = context.session, context.actor.user_id
    seq = 1 if before is None else await repository.last_entry_seq(session, order.id) + 1
    await repository.add_entry(
        session,
        {
            "id": uuid7(),
            "rectification_id": order.id,
            "seq": seq,
            "at": context.now,
            "actor_id": actor_id,
            "action": action,
            "before": jsonable(before),
            "after": jsonable(after),
            "note": note,
        },
    )
    await publish(
        session,
        f"rectification.{message}",
        event_id=order.event_id,
        at=context.now,
        data={**_snapshot(order), "actor_id": actor_id},
    )


async def _issue(context: RequestContext, order: Rectification) -> Rectification:
    """R5.3: issue `order` (its department, demand, due time and origin filled in)."""
    order.id, order.status, order.version = uuid7(), OrderStatus.ISSUED, 1
    order.issued_by = context.actor.user_id
    order.created_at = order.updated_at = context.now
    context.session.add(order)
    await context.session.flush()
    after = {**_snapshot(order), "demand": order.demand, "questions": order.questions}
    await _record(context, order, action="issue", message="issued", before=None, after=after)
    return order


async def create_order(
    context: RequestContext, data: api.RectificationCreate
) -> api.RectificationRead:
    """R5.3: a supervisor orders a department to rectify, by a deadline (default 14 days)."""
    _require_supervisor(context, "issue rectification orders")
    session, now = context.session, context.now
    errors = []
    if not await repository.department_exists(session, data.department):
        errors.append(("department", f"No active department {data.department}"))
    if data.event_id is not None and not await repository.event_exists(session, data.event_id):
        errors.append(("event_id", f"No event {data.event_id}"))
    due_at = data.due_at or rules.order_due(now, rules.RECTIFICATION_DEADLINE)
    if due_at <= now:
        errors.append(("due_at", "must be in the future"))
    if errors:
        raise Unprocessable(
            "; ".join(f"{field}: {message}" for field, message in errors),
            errors=[
                {"field": f"body.{field}", "message": message, "code": "invalid"}
                for field, message in errors
            ],
        )
    order = Rectification(
        department=data.department,
        demand=data.demand,
        due_at=due_at,
        questions=[],
        spot_check_id=None,
        item_id=None,
        event_id=data.event_id,
    )
    return order_read(await _issue(context, order), context)


def _visible(
    order: Rectification | None, context: RequestContext, order_id: uuid.UUID
) -> Rectification:
    """R5.3: 404 for an order the caller may not see, as for one that does not exist."""
    actor = context.actor
    if order is None or not rules.may_see_order(actor.roles, actor.department, order.department):
        raise NotFound(f"No rectification order {order_id}")
    return order


async def _open_order(context: RequestContext, order_id: uuid.UUID) -> Rectification:
    """The order, locked so that changes serialise; 404 if not visible, 412 if `If-Match`
    names another version."""
    order = await repository.get_order(context.session, order_id, for_update=True)
    order = _visible(order, context, order_id)
    check_if_match(context.if_match, order.version, what="order")
    return order


def _next(order: Rectification, action: OrderAction) -> OrderStatus:
    try:
        return rules.next_order_status(order.status, action)
    except rules.OrderTransitionNotAllowed as exc:
        raise TransitionNotAllowedError(
            exc.current.value,
            exc.action.value,
            [a.value for a in exc.allowed],
            what="a rectification order",
        ) from None


async def _moved(
    context: RequestContext,
    order: Rectification,
    action: OrderAction,
    target: OrderStatus,
    *,
    message: str,
    after: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> api.RectificationRead:
    """R5.3, R7.1: the order moved by `action` to `target` (the caller has set what the action
    records): a new version, its history entry and its `rectification.<message>` message."""
    before = {"status": order.status}
    order.status = target
    order.version += 1
    order.updated_at = context.now
    await context.session.flush()
    await _record(
        context,
        order,
        action=action.value,
        message=message,
        before=before,
        after={"status": target, **(after or {})},
        note=note,
    )
    return order_read(order, context)


async def get_order(context: RequestContext, order_id: uuid.UUID) -> api.RectificationRead:
    """R5.3: one order (404 for another department's)."""
    order = _visible(await repository.get_order(context.session, order_id), context, order_id)
    return order_read(order, context)


async def list_orders(
    context: RequestContext, flt: repository.OrderFilter, *, cursor: str | None, limit: int
) -> api.RectificationPage:
    """R5.3: the orders the caller may see (all for supervisors and admins, their own
    department's for its staff, none for others), newest first."""
    actor = context.actor
    only: str | None = None
    if not rules.may_supervise(actor.roles):
        own = actor.department
        if own is None or not rules.may_see_order(actor.roles, own, own):
            return api.RectificationPage(items=[], next_cursor=None)
        only = own
    rows = await repository.list_orders(
        context.session,
        flt,
        only_department=only,
        cursor=decode_cursor(cursor) if cursor else None,
        limit=limit,
    )
    page, next_cursor = page_of(rows, limit, _newest_first)
    return api.RectificationPage(
        items=[order_read(o, context) for o in page], next_cursor=next_cursor
    )


async def timeline(context: RequestContext, order_id: uuid.UUID) -> api.RectificationTimeline:
    """R5.3, R7.1: the append-only history of an order."""
    _visible(await repository.get_order(context.session, order_id), context, order_id)
    entries = await repository.entries_of(context.session, order_id)
    return api.RectificationTimeline(
        items=[api.RectificationEntryRead.model_validate(e) for e in entries]
    )


async def respond(
    context: RequestContext, order_id: uuid.UUID, data: api.RectificationResponseIn
) -> api.RectificationRead:
    """R5.3: the head of the order's department gives the cause and the measures taken."""
    order = await _open_order(context, order_id)
    actor = context.actor
    if not rules.may_respond(actor.roles, actor.department, order.department):
        raise Forbidden("Only the head of the order's department may respond to it (R5.3)")
    target = _next(order, OrderAction.RESPOND)
    order.cause, order.measures = data.cause, data.measures
    order.responded_by, order.responded_at = actor.user_id, context.now
    return await _moved(
        context,
        order,
        OrderAction.RESPOND,
        target,
        message="responded",
        after={"cause": data.cause, "measures": data.measures},
    )


async def verify(
    context: RequestContext, order_id: uuid.UUID, data: api.RectificationVerificationIn
) -> api.RectificationRead:
    """R5.3: a supervisor accepts the response (verified) or rejects it back to `issued`
    with a reason (422 without one)."""
    _require_supervisor(context, "verify rectification orders")
    if not data.accepted and not (data.note and data.note.strip()):
        raise Unprocessable(
            "Rejecting a response needs a note saying why",
            errors=[{"field": "body.note", "message": "required to reject", "code": "missing"}],
        )
    order = await _open_order(context, order_id)
    action = OrderAction.ACCEPT if data.accepted else OrderAction.REJECT
    target = _next(order, action)
    order.verification_note = data.note
    order.verified_by, order.verified_at = context.actor.user_id, context.now
    return await _moved(
        context,
        order,
        action,
        target,
        message="verified" if data.accepted else "rejected",
        after={"accepted": data.accepted},
        note=data.note,
    )


async def close(context: RequestContext, order_id: uuid.UUID) -> api.RectificationRead:
    """R5.3: a supervisor closes a verified order."""
    _require_supervisor(context, "close rectification orders")
    order = await _open_order(context, order_id)
    target = _next(order, OrderAction.CLOSE)
    order.closed_by, order.closed_at = context.actor.user_id, context.now
    return await _moved(context, order, OrderAction.CLOSE, target, message="closed")
