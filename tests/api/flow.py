"""Drive an event through its lifecycle over HTTP (product.md sections 2 and 7).

The helpers assert the status code of every call and return the JSON body, so a test reads as
the story of one event. `walk` takes a new event from intake to any status of the happy path.
"""

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.directory import service as directory
from app.directory.schemas import ApiKeyCreate, UserCreate
from app.rules.vocabulary import Role, Status
from tests.conftest import Actor, intake_body

JSON = dict[str, Any]
MakeActor = Callable[..., Awaitable[Actor]]

PROBLEM = "application/problem+json"
HAPPY_PATH = (
    Status.REPORTED,
    Status.CLASSIFIED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.RESOLVED,
    Status.FEEDBACK_GIVEN,
    Status.REVIEWED,
    Status.CLOSED,
)


def later(hours: float = 48) -> str:
    """An RFC 3339 time `hours` from now."""
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def at(value: str) -> datetime:
    """A time as a response gives it (RFC 3339)."""
    return datetime.fromisoformat(value)


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    actor: Actor | None,
    *,
    json: Any = None,
    expect: int = 200,
    headers: dict[str, str] | None = None,
) -> JSON:
    """One request; assert its status code and return the JSON body."""
    response = await client.request(
        method, url, json=json, headers={**(actor.headers if actor else {}), **(headers or {})}
    )
    assert response.status_code == expect, f"{method} {url}: {response.status_code} {response.text}"
    body: JSON = response.json()
    return body


async def refused(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    actor: Actor | None,
    *,
    json: Any = None,
    status: int = 409,
    headers: dict[str, str] | None = None,
) -> JSON:
    """A request the service must refuse with a problem+json of `status`; returns the problem."""
    response = await client.request(
        method, url, json=json, headers={**(actor.headers if actor else {}), **(headers or {})}
    )
    assert response.status_code == status, f"{method} {url}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    problem: JSON = response.json()
    assert problem["status"] == status
    return problem


async def missing(
    client: httpx.AsyncClient, method: str, url: str, actor: Actor, *, json: Any = None
) -> list[str]:
    """A gate that is not met: 409 `gate-not-met`; returns the `missing` codes."""
    problem = await refused(client, method, url, actor, json=json, status=409)
    assert problem["type"].endswith("/gate-not-met"), problem
    codes: list[str] = problem["missing"]
    return codes


async def not_allowed(
    client: httpx.AsyncClient, method: str, url: str, actor: Actor, *, json: Any = None
) -> list[str]:
    """An illegal transition: 409 `transition-not-allowed`; returns the `allowed` actions."""
    problem = await refused(client, method, url, actor, json=json, status=409)
    assert problem["type"].endswith("/transition-not-allowed"), problem
    allowed: list[str] = problem["allowed"]
    return allowed


# ---- the people ----------------------------------------------------------------------------


async def create_actor(
    maker: async_sessionmaker[AsyncSession], *roles: Role, department: str | None = None
) -> Actor:
    """Like the `make_actor` fixture, for any session maker (e.g. one that really commits)."""
    async with maker() as session:
        user = await directory.create_user(
            session,
            UserCreate(
                name=f"{'/'.join(roles)} {department or ''}".strip(),
                email=f"flow-{uuid.uuid4().hex[:16]}@example.com",
                department=department,
                roles=list(roles),
            ),
        )
        key = await directory.create_api_key(session, ApiKeyCreate(name="flow", user_id=user.id))
        await session.commit()
    return Actor(id=user.id, token=key.token, department=department, roles=tuple(roles))


@dataclass(frozen=True)
class Cast:
    """Who walks an event: the intake desk (CS), staff of the lead department, a supervisor
    and the employee who reported it."""

    desk: Actor
    handler: Actor
    head: Actor
    supervisor: Actor
    reporter: Actor


async def make_cast(make: MakeActor, lead: str) -> Cast:
    return Cast(
        desk=await make(Role.INTAKE_AGENT, department="CS"),
        handler=await make(Role.HANDLER, department=lead),
        head=await make(Role.DEPT_HEAD, department=lead),
        supervisor=await make(Role.SUPERVISOR, department="SUP"),
        reporter=await make(Role.REPORTER, department="SALES"),
    )


# ---- the kinds of event --------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One kind of event and what the default policy makes of it (R2, R3.2.2, R3.2.3)."""

    category: str
    subcategory: str
    lead: str
    severity: str
    impact: JSON = field(default_factory=dict)
    involved: tuple[str, ...] = ()
    cooperating: tuple[str, ...] = ()
    urgent: bool = False

    @property
    def needs_actions(self) -> bool:
        return self.severity in ("important", "major")

    @property
    def needs_meeting(self) -> bool:
        return self.severity == "major"


BUSINESS_ISSUE = Scenario(
    category="business_issue",
    subcategory="system_failure",
    lead="IT",
    severity="general",
)
MAJOR_COMPLAINT = Scenario(
    category="customer_complaint",
    subcategory="delivery_time",
    lead="CS",
    severity="major",
    impact={"key_account": True, "customers_affected": 150},
    involved=("LOG",),
    cooperating=("LOG",),
)
COORDINATION = Scenario(
    category="internal_coordination",
    subcategory="task_allocation",
    lead="OPS",
    severity="important",
    impact={"departments_needed": 2, "scope": "multi_department"},
    involved=("OPS", "LOG"),
    cooperating=("LOG",),
)
EMERGENCY = Scenario(
    category="emergency",
    subcategory="safety_accident",
    lead="SAF",
    severity="important",
    impact={"safety": "minor"},
    urgent=True,
)
SCENARIOS = {s.category: s for s in (BUSINESS_ISSUE, MAJOR_COMPLAINT, COORDINATION, EMERGENCY)}


# ---- one call per stage --------------------------------------------------------------------


def url(event_id: str, tail: str = "") -> str:
    return f"/v1/events/{event_id}{tail}"


async def report(client: httpx.AsyncClient, actor: Actor, **overrides: Any) -> JSON:
    """A new event (`intake_body` with `overrides`), reported by `actor`."""
    response = await client.post("/v1/events", json=intake_body(**overrides), headers=actor.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def post_classification(
    client: httpx.AsyncClient, actor: Actor, event_id: str, **body: Any
) -> httpx.Response:
    return await client.post(url(event_id, "/classification"), json=body, headers=actor.headers)


async def classified(client: httpx.AsyncClient, actor: Actor, event_id: str, **body: Any) -> JSON:
    """Classify with `body`; asserts 200 and returns the event."""
    response = await post_classification(client, actor, event_id, **body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def post_assignment(
    client: httpx.AsyncClient, actor: Actor, event_id: str, **body: Any
) -> httpx.Response:
    return await client.post(url(event_id, "/assignment"), json=body, headers=actor.headers)


async def assigned(client: httpx.AsyncClient, actor: Actor, event_id: str, **body: Any) -> JSON:
    """Assign with `body`; asserts 200 and returns the event."""
    response = await post_assignment(client, actor, event_id, **body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def classified_event(
    client: httpx.AsyncClient,
    desk: Actor,
    category: str,
    subcategory: str,
    *,
    involved: list[str] | None = None,
    impact: JSON | None = None,
    reporter: Actor | None = None,
) -> JSON:
    """A new event (reported by `reporter`, else the desk), classified by the desk."""
    event = await report(client, reporter or desk, involved_departments=involved or [])
    return await classified(
        client, desk, event["id"], category=category, subcategory=subcategory, impact=impact or {}
    )


async def intake(
    client: httpx.AsyncClient, actor: Actor, scenario: Scenario, **overrides: Any
) -> JSON:
    body = intake_body(
        title=f"{scenario.category}: {scenario.subcategory}",
        urgent=scenario.urgent,
        involved_departments=list(scenario.involved),
    )
    body.update(overrides)
    return await call(client, "POST", "/v1/events", actor, json=body, expect=201)


def classification(scenario: Scenario, **overrides: Any) -> JSON:
    return {
        "category": scenario.category,
        "subcategory": scenario.subcategory,
        "impact": scenario.impact,
        **overrides,
    }


async def classify(
    client: httpx.AsyncClient, desk: Actor, event_id: str, scenario: Scenario
) -> JSON:
    return await call(
        client, "POST", url(event_id, "/classification"), desk, json=classification(scenario)
    )


async def assign(
    client: httpx.AsyncClient, desk: Actor, event_id: str, *, assignee: Actor | None = None
) -> JSON:
    body = {"assignee_id": str(assignee.id)} if assignee else {}
    return await call(client, "POST", url(event_id, "/assignment"), desk, json=body)


def plan_body(*owners: Actor, discussed_with: tuple[str, ...] = ("LOG lead", "CS lead")) -> JSON:
    return {
        "steps": [
            {"title": f"Step {n}", "owner_id": str(owner.id), "due_at": later(24 + n)}
            for n, owner in enumerate(owners, start=1)
        ],
        "discussed_with": list(discussed_with),
    }


async def plan(client: httpx.AsyncClient, handler: Actor, event_id: str, *owners: Actor) -> JSON:
    return await call(
        client, "PUT", url(event_id, "/plan"), handler, json=plan_body(*(owners or (handler,)))
    )


async def finish_steps(client: httpx.AsyncClient, handler: Actor, event: JSON) -> JSON:
    """Mark every open step done (as a member of the lead department)."""
    for step in event["steps"]:
        if step["status"] == "open":
            event = await call(
                client,
                "PATCH",
                url(event["id"], f"/steps/{step['id']}"),
                handler,
                json={"status": "done", "note": "Done as planned"},
            )
    return event


RESOLUTION = {"result": "Invoices renumbered", "measures": "Sequence fixed, customers told"}


async def resolve(client: httpx.AsyncClient, handler: Actor, event_id: str) -> JSON:
    return await call(client, "POST", url(event_id, "/resolution"), handler, json=RESOLUTION)


def feedback_body(audience: str) -> JSON:
    return {
        "audience": audience,
        "result": "The duplicated invoices were replaced.",
        "measures": "The numbering sequence was repaired.",
        "prevention_advice": "Check numbering after every release.",
    }


async def feedback(client: httpx.AsyncClient, actor: Actor, event_id: str, audience: str) -> JSON:
    return await call(
        client, "POST", url(event_id, "/feedback"), actor, json=feedback_body(audience), expect=201
    )


async def decide(
    client: httpx.AsyncClient,
    desk: Actor,
    event_id: str,
    feedback_id: str,
    decision: str = "accept",
    note: str | None = None,
) -> JSON:
    body: JSON = {"decision": decision}
    if note is not None:
        body["note"] = note
    return await call(
        client, "POST", url(event_id, f"/feedback/{feedback_id}/decision"), desk, json=body
    )


async def give_feedback(client: httpx.AsyncClient, cast: Cast, event_id: str) -> JSON:
    """The two hops of R3.4.1: lead department -> intake desk (accepted) -> reporter."""
    to_desk = await feedback(client, cast.handler, event_id, "intake")
    await decide(client, cast.desk, event_id, to_desk["id"])
    return await feedback(client, cast.desk, event_id, "reporter")


async def add_action(
    client: httpx.AsyncClient, actor: Actor, event_id: str, department: str
) -> JSON:
    return await call(
        client,
        "POST",
        url(event_id, "/actions"),
        actor,
        json={
            "description": "Add a numbering check to the release checklist",
            "department": department,
            "due_at": later(24 * 14),
        },
        expect=201,
    )


def review_body(*, meeting: bool, root_cause_code: str = "system_defect") -> JSON:
    body: JSON = {
        "causes": "A release reset the invoice sequence.",
        "handling": "Renumbered and informed the customers.",
        "result": "No duplicated invoices since.",
        "lessons": "Sequences need a release check.",
        "root_cause_code": root_cause_code,
    }
    if meeting:
        body["meeting"] = {
            "held_at": datetime.now(UTC).isoformat(),
            "attendees": ["Head of CS", "Head of LOG"],
            "conclusions": "Add a pre-release numbering check.",
        }
    return body


async def review(client: httpx.AsyncClient, actor: Actor, event_id: str, *, meeting: bool) -> JSON:
    return await call(
        client, "PUT", url(event_id, "/review"), actor, json=review_body(meeting=meeting)
    )


async def complete_action(
    client: httpx.AsyncClient, actor: Actor, event_id: str, action_id: str
) -> JSON:
    return await call(
        client,
        "PATCH",
        url(event_id, f"/actions/{action_id}"),
        actor,
        json={"status": "done", "evidence": "Checklist item added, see release notes"},
    )


async def verify(
    client: httpx.AsyncClient,
    actor: Actor,
    event_id: str,
    action_id: str,
    *,
    effective: bool = True,
) -> JSON:
    return await call(
        client,
        "POST",
        url(event_id, f"/actions/{action_id}/verification"),
        actor,
        json={"effective": effective, "note": "Checked on the last release"},
    )


async def satisfaction(
    client: httpx.AsyncClient, desk: Actor, event_id: str, score: int = 5
) -> JSON:
    return await call(
        client,
        "POST",
        url(event_id, "/satisfaction"),
        desk,
        json={"score": score, "comment": "Quick and polite"},
        expect=201,
    )


async def close(client: httpx.AsyncClient, desk: Actor, event_id: str) -> JSON:
    return await call(client, "POST", url(event_id, "/close"), desk)


async def timeline(client: httpx.AsyncClient, actor: Actor, event_id: str) -> JSON:
    return await call(client, "GET", url(event_id, "/timeline"), actor)


async def actions_of(client: httpx.AsyncClient, actor: Actor, event_id: str) -> list[JSON]:
    response = await client.get(url(event_id, "/actions"), headers=actor.headers)
    assert response.status_code == 200, response.text
    actions: list[JSON] = response.json()
    return actions


# ---- the whole walk ------------------------------------------------------------------------


def _before(status: Status, target: Status) -> bool:
    return HAPPY_PATH.index(status) <= HAPPY_PATH.index(target)


async def walk(
    client: httpx.AsyncClient,
    cast: Cast,
    scenario: Scenario,
    to: Status,
    *,
    reporter: Actor | None = None,
    satisfied: bool = True,
    text: tuple[str, str] | None = None,
) -> JSON:
    """A new event of `scenario`, taken along the happy path up to `to`; returns the event.

    Before review an important or major event gets one improvement action of the lead
    department; after review the handler completes it and the head verifies it. With
    `satisfied` the desk records a score before review (so a reviewed event can close).
    `text`: its title and description (else all walked events read alike, and a later one
    of the same category is matched as a recurrence of a closed one, R5.4)."""
    overrides = {} if text is None else {"title": text[0], "description": text[1]}
    event = await intake(client, reporter or cast.reporter, scenario, **overrides)
    event_id = event["id"]
    steps: list[tuple[Status, Callable[[], Awaitable[JSON]]]] = [
        (Status.CLASSIFIED, lambda: classify(client, cast.desk, event_id, scenario)),
        (Status.ASSIGNED, lambda: assign(client, cast.desk, event_id, assignee=cast.handler)),
        (Status.IN_PROGRESS, lambda: plan(client, cast.handler, event_id)),
    ]
    for status, step in steps:
        if not _before(status, to):
            return event
        event = await step()
        assert event["status"] == status, event
    if not _before(Status.RESOLVED, to):
        return event
    await finish_steps(client, cast.handler, event)
    event = await resolve(client, cast.handler, event_id)
    if not _before(Status.FEEDBACK_GIVEN, to):
        return event
    await give_feedback(client, cast, event_id)
    if satisfied:
        await satisfaction(client, cast.desk, event_id)
    action = None
    if scenario.needs_actions:
        action = await add_action(client, cast.handler, event_id, scenario.lead)
    if not _before(Status.REVIEWED, to):
        return await call(client, "GET", url(event_id), cast.desk)
    event = await review(client, cast.handler, event_id, meeting=scenario.needs_meeting)
    if action is not None:
        await complete_action(client, cast.handler, event_id, action["id"])
        await verify(client, cast.head, event_id, action["id"])
    if not _before(Status.CLOSED, to):
        return await call(client, "GET", url(event_id), cast.desk)
    return await close(client, cast.desk, event_id)
