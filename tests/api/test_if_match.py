"""`If-Match` on every request that changes an event's version (issue 10, item 6).

product.md section 4: "`ETag`/`version` on events; `If-Match` with a stale version answers 412".
Each case brings a new event to the status its endpoint needs (tests/api/flow.py), sends the
request with a stale ETag (412, nothing changed), then with the current one (it goes through
and the version moves on, which shows the endpoint is one that must honour `If-Match`).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.rules.vocabulary import Status
from tests.api import flow
from tests.api.flow import COORDINATION, JSON, Cast, call, refused, url
from tests.conftest import Actor, MakeActor

SCENARIO = COORDINATION  # important: it needs an improvement action, so every stage is walked


@dataclass(frozen=True)
class Change:
    """One request that changes an event."""

    event_id: str
    method: str
    path: str  # after /v1/events/{event_id}
    actor: Actor
    body: JSON | None = None


Prepare = Callable[[httpx.AsyncClient, Cast], Awaitable[Change]]


async def _at(client: httpx.AsyncClient, cast: Cast, status: Status, **kw: Any) -> str:
    event = await flow.walk(client, cast, SCENARIO, status, **kw)
    return str(event["id"])


async def _classification(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.REPORTED)
    body = flow.classification(SCENARIO)
    return Change(event_id, "POST", "/classification", cast.desk, body)


async def _assignment(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.CLASSIFIED)
    body = {"assignee_id": str(cast.handler.id)}
    return Change(event_id, "POST", "/assignment", cast.desk, body)


async def _plan(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.ASSIGNED)
    return Change(event_id, "PUT", "/plan", cast.handler, flow.plan_body(cast.handler))


async def _step(client: httpx.AsyncClient, cast: Cast) -> Change:
    event = await flow.walk(client, cast, SCENARIO, Status.IN_PROGRESS)
    step = event["steps"][0]["id"]
    return Change(event["id"], "PATCH", f"/steps/{step}", cast.handler, {"status": "done"})


async def _note(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.IN_PROGRESS)
    body = {"kind": "progress", "body": "Called the warehouse"}
    return Change(event_id, "POST", "/notes", cast.desk, body)


async def _resolution(client: httpx.AsyncClient, cast: Cast) -> Change:
    event = await flow.walk(client, cast, SCENARIO, Status.IN_PROGRESS)
    await flow.finish_steps(client, cast.handler, event)
    return Change(event["id"], "POST", "/resolution", cast.handler, flow.RESOLUTION)


async def _feedback_to_intake(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.RESOLVED)
    return Change(event_id, "POST", "/feedback", cast.handler, flow.feedback_body("intake"))


async def _decision(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.RESOLVED)
    to_desk = await flow.feedback(client, cast.handler, event_id, "intake")
    path = f"/feedback/{to_desk['id']}/decision"
    return Change(event_id, "POST", path, cast.desk, {"decision": "accept"})


async def _feedback_to_reporter(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.RESOLVED)
    to_desk = await flow.feedback(client, cast.handler, event_id, "intake")
    await flow.decide(client, cast.desk, event_id, to_desk["id"])
    return Change(event_id, "POST", "/feedback", cast.desk, flow.feedback_body("reporter"))


async def _satisfaction(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.FEEDBACK_GIVEN, satisfied=False)
    body = {"score": 4, "comment": "Fine"}
    return Change(event_id, "POST", "/satisfaction", cast.desk, body)


async def _survey_link(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.FEEDBACK_GIVEN, satisfied=False)
    return Change(event_id, "POST", "/survey-link", cast.desk)


async def _add_action(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.RESOLVED)
    body = {"description": "Weekly sync", "department": SCENARIO.lead, "due_at": flow.later(300)}
    return Change(event_id, "POST", "/actions", cast.handler, body)


async def _review(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.FEEDBACK_GIVEN)
    body = flow.review_body(meeting=SCENARIO.needs_meeting)
    return Change(event_id, "PUT", "/review", cast.handler, body)


async def _complete_action(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.FEEDBACK_GIVEN)
    action = (await flow.actions_of(client, cast.desk, event_id))[0]["id"]
    body = {"status": "done", "evidence": "Minutes of the first sync"}
    return Change(event_id, "PATCH", f"/actions/{action}", cast.handler, body)


async def _verification(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.FEEDBACK_GIVEN)
    action = (await flow.actions_of(client, cast.desk, event_id))[0]["id"]
    await flow.complete_action(client, cast.handler, event_id, action)
    body = {"effective": True, "note": "Seen working"}
    return Change(event_id, "POST", f"/actions/{action}/verification", cast.head, body)


async def _close(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.REVIEWED)
    return Change(event_id, "POST", "/close", cast.desk)


async def _reopen(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.RESOLVED)
    return Change(event_id, "POST", "/reopen", cast.desk, {"reason": "Not fixed"})


async def _cancel(client: httpx.AsyncClient, cast: Cast) -> Change:
    event_id = await _at(client, cast, Status.REPORTED)
    return Change(event_id, "POST", "/cancel", cast.desk, {"reason": "Test call"})


# (method, route under /v1/events/{event_id}, case name) -> how to get there
CASES: dict[tuple[str, str, str], Prepare] = {
    ("POST", "/classification", "classification"): _classification,
    ("POST", "/assignment", "assignment"): _assignment,
    ("PUT", "/plan", "plan"): _plan,
    ("PATCH", "/steps/{step_id}", "step"): _step,
    ("POST", "/notes", "note"): _note,
    ("POST", "/resolution", "resolution"): _resolution,
    ("POST", "/feedback", "feedback_to_intake"): _feedback_to_intake,
    ("POST", "/feedback/{feedback_id}/decision", "feedback_decision"): _decision,
    ("POST", "/feedback", "feedback_to_reporter"): _feedback_to_reporter,
    ("POST", "/satisfaction", "satisfaction"): _satisfaction,
    ("POST", "/survey-link", "survey_link"): _survey_link,
    ("POST", "/actions", "add_action"): _add_action,
    ("PUT", "/review", "review"): _review,
    ("PATCH", "/actions/{action_id}", "complete_action"): _complete_action,
    ("POST", "/actions/{action_id}/verification", "verify_action"): _verification,
    ("POST", "/close", "close"): _close,
    ("POST", "/reopen", "reopen"): _reopen,
    ("POST", "/cancel", "cancel"): _cancel,
}


async def _state(client: httpx.AsyncClient, cast: Cast, event_id: str) -> tuple[int, str, int]:
    """(version, status, timeline length) as the intake desk sees them."""
    event = await call(client, "GET", url(event_id), cast.desk)
    entries = (await flow.timeline(client, cast.desk, event_id))["items"]
    return event["version"], event["status"], len(entries)


def test_every_event_changing_route_has_a_case(app: FastAPI) -> None:
    """A new endpoint that changes an event must join the table below."""
    prefix = "/v1/events/{event_id}"
    routes = {
        (method.upper(), path.removeprefix(prefix))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(prefix + "/")
        for method in operations
        if method != "get"
    }
    assert routes == {(method, path) for method, path, _ in CASES}


@pytest.mark.parametrize("route", list(CASES), ids=[name for *_, name in CASES])
async def test_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, make_actor: MakeActor, route: tuple[str, str, str]
) -> None:
    cast = await flow.make_cast(make_actor, SCENARIO.lead)
    change = await CASES[route](client, cast)
    version, status, entries = await _state(client, cast, change.event_id)

    problem = await refused(
        client,
        change.method,
        url(change.event_id, change.path),
        change.actor,
        json=change.body,
        headers={"If-Match": f'"v{version - 1}"'},
        status=412,
    )
    assert problem["type"].endswith("/precondition-failed")
    assert problem["current_version"] == version
    assert await _state(client, cast, change.event_id) == (version, status, entries)

    # With the current ETag the same request goes through and moves the version on.
    response = await client.request(
        change.method,
        url(change.event_id, change.path),
        json=change.body,
        headers={**change.actor.headers, "If-Match": f'"v{version}"'},
    )
    assert response.status_code in (200, 201), response.text
    assert (await _state(client, cast, change.event_id))[0] == version + 1
    # Review of issue 10, item 7: every change answers with the event's new ETag, also when
    # it answers with what it made (a note, feedback, an action, satisfaction, a survey link).
    assert response.headers["etag"] == f'"v{version + 1}"', change.path
