"""Who may do what on an event: the role x action matrix, enforced over HTTP (product.md
section 1; R1.3.3, R4, R5.1). A role without the grant gets 403; someone who may not see the
event gets 404, never 403 (no existence leak)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.rules.permissions import MATRIX, EventAction, may, may_see
from app.rules.vocabulary import Role, Status
from tests.api import flow
from tests.api.flow import JSON, Cast, MakeActor, Scenario, call, url
from tests.conftest import Actor, intake_body

# An IT-led business issue on which OPS cooperates; SALES has nothing to do with it.
IT_LED = Scenario(
    category="business_issue",
    subcategory="system_failure",
    lead="IT",
    severity="general",
    involved=("IT", "OPS"),
    cooperating=("OPS",),
)

PEOPLE: Mapping[str, tuple[tuple[Role, ...], str | None]] = {
    "own_reporter": ((Role.REPORTER,), "SALES"),  # reported this event
    "other_reporter": ((Role.REPORTER,), "SALES"),
    "integration": ((Role.INTEGRATION,), None),
    "lead_handler": ((Role.HANDLER,), "IT"),
    "lead_head": ((Role.DEPT_HEAD,), "IT"),
    "coop_handler": ((Role.HANDLER,), "OPS"),
    "coop_head": ((Role.DEPT_HEAD,), "OPS"),
    "other_handler": ((Role.HANDLER,), "SALES"),
    "other_head": ((Role.DEPT_HEAD,), "SALES"),
    "desk": ((Role.INTAKE_AGENT,), "CS"),
    "supervisor": ((Role.SUPERVISOR,), "SUP"),
    "admin": ((Role.ADMIN,), None),
}
HIDDEN = frozenset({"other_reporter", "integration", "other_handler", "other_head"})
VISIBLE = frozenset(PEOPLE) - HIDDEN

_LEAD_STAFF = {"lead_handler", "lead_head", "admin"}
_DESK = {"desk", "admin"}
_DESK_OR_SUPERVISOR = {"desk", "supervisor", "admin"}

# The written matrix: who, among those who see the event, may do each action on it.
ALLOWED: Mapping[EventAction, frozenset[str]] = {
    EventAction.INTAKE: VISIBLE,
    EventAction.CLASSIFY: frozenset(_DESK_OR_SUPERVISOR),
    EventAction.ASSIGN: frozenset(_DESK_OR_SUPERVISOR),
    EventAction.PLAN: frozenset(_LEAD_STAFF),
    EventAction.UPDATE_STEP: frozenset(_LEAD_STAFF),
    EventAction.ADD_NOTE: frozenset(
        {*_LEAD_STAFF, "coop_handler", "coop_head", "desk", "supervisor"}
    ),
    EventAction.RESOLVE: frozenset(_LEAD_STAFF),
    EventAction.FEEDBACK_TO_INTAKE: frozenset(_LEAD_STAFF),
    EventAction.DECIDE_FEEDBACK: frozenset(_DESK),
    EventAction.FEEDBACK_TO_REPORTER: frozenset(_DESK),
    EventAction.RECORD_SATISFACTION: frozenset(_DESK),
    EventAction.REVIEW: frozenset(_LEAD_STAFF),
    EventAction.ADD_ACTION: frozenset({*_LEAD_STAFF, "supervisor"}),
    EventAction.COMPLETE_ACTION: frozenset({*_LEAD_STAFF, "coop_handler", "coop_head"}),
    EventAction.VERIFY_ACTION: frozenset({"lead_head", "coop_head", "desk", "supervisor", "admin"}),
    EventAction.CLOSE: frozenset(_DESK_OR_SUPERVISOR),
    EventAction.CANCEL: frozenset(_DESK_OR_SUPERVISOR),
    EventAction.REOPEN: frozenset({*_DESK_OR_SUPERVISOR, "lead_head"}),
}


def test_written_matrix_is_the_enforced_matrix() -> None:
    """The table above and app/rules/permissions.py say the same thing."""
    assert set(ALLOWED) == set(MATRIX)
    for key, (roles, department) in PEOPLE.items():
        seen = may_see(
            roles,
            department=department,
            is_reporter=key == "own_reporter",
            lead=IT_LED.lead,
            cooperating=IT_LED.cooperating,
        )
        assert seen is (key in VISIBLE), key
        if not seen:
            continue
        for action, allowed in ALLOWED.items():
            granted = may(
                action,
                roles,
                department=department,
                lead=IT_LED.lead,
                cooperating=IT_LED.cooperating,
            )
            assert granted is (key in allowed), (action, key)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: JSON | None = None


async def _prepare(client: httpx.AsyncClient, cast: Cast, action: EventAction) -> Request:
    """A new event in the state where `action` is allowed, and the request that does it."""
    reachable: dict[EventAction, Status] = {
        EventAction.CLASSIFY: Status.ASSIGNED,
        EventAction.ASSIGN: Status.ASSIGNED,
        EventAction.PLAN: Status.ASSIGNED,
        EventAction.CANCEL: Status.ASSIGNED,
        EventAction.UPDATE_STEP: Status.IN_PROGRESS,
        EventAction.ADD_NOTE: Status.IN_PROGRESS,
        EventAction.RESOLVE: Status.IN_PROGRESS,
        EventAction.FEEDBACK_TO_INTAKE: Status.RESOLVED,
        EventAction.DECIDE_FEEDBACK: Status.RESOLVED,
        EventAction.FEEDBACK_TO_REPORTER: Status.RESOLVED,
        EventAction.REOPEN: Status.RESOLVED,
        EventAction.RECORD_SATISFACTION: Status.FEEDBACK_GIVEN,
        EventAction.REVIEW: Status.FEEDBACK_GIVEN,
        EventAction.ADD_ACTION: Status.FEEDBACK_GIVEN,
        EventAction.COMPLETE_ACTION: Status.FEEDBACK_GIVEN,
        EventAction.VERIFY_ACTION: Status.FEEDBACK_GIVEN,
        EventAction.CLOSE: Status.REVIEWED,
    }
    event = await flow.walk(
        client,
        cast,
        IT_LED,
        reachable[action],
        satisfied=action is not EventAction.RECORD_SATISFACTION,
    )
    event_id = event["id"]
    if action is EventAction.CLASSIFY:
        return Request("POST", url(event_id, "/classification"), flow.classification(IT_LED))
    if action is EventAction.ASSIGN:
        return Request("POST", url(event_id, "/assignment"), {})
    if action is EventAction.PLAN:
        return Request("PUT", url(event_id, "/plan"), flow.plan_body(cast.handler))
    if action is EventAction.CANCEL:
        return Request("POST", url(event_id, "/cancel"), {"reason": "Duplicate"})
    if action is EventAction.UPDATE_STEP:
        step_id = event["steps"][0]["id"]
        return Request("PATCH", url(event_id, f"/steps/{step_id}"), {"status": "done"})
    if action is EventAction.ADD_NOTE:
        return Request("POST", url(event_id, "/notes"), {"kind": "progress", "body": "Update"})
    if action is EventAction.RESOLVE:
        await flow.finish_steps(client, cast.handler, event)
        return Request("POST", url(event_id, "/resolution"), flow.RESOLUTION)
    if action is EventAction.FEEDBACK_TO_INTAKE:
        return Request("POST", url(event_id, "/feedback"), flow.feedback_body("intake"))
    if action is EventAction.DECIDE_FEEDBACK:
        to_desk = await flow.feedback(client, cast.handler, event_id, "intake")
        return Request(
            "POST", url(event_id, f"/feedback/{to_desk['id']}/decision"), {"decision": "accept"}
        )
    if action is EventAction.FEEDBACK_TO_REPORTER:
        to_desk = await flow.feedback(client, cast.handler, event_id, "intake")
        await flow.decide(client, cast.desk, event_id, to_desk["id"])
        return Request("POST", url(event_id, "/feedback"), flow.feedback_body("reporter"))
    if action is EventAction.REOPEN:
        return Request("POST", url(event_id, "/reopen"), {"reason": "Not satisfied"})
    if action is EventAction.RECORD_SATISFACTION:
        return Request("POST", url(event_id, "/satisfaction"), {"score": 3})
    if action is EventAction.REVIEW:
        return Request("PUT", url(event_id, "/review"), flow.review_body(meeting=False))
    if action is EventAction.CLOSE:
        return Request("POST", url(event_id, "/close"))
    improvement = {
        "description": "Monitor the sequence",
        "department": "IT",
        "due_at": flow.later(),
    }
    if action is EventAction.ADD_ACTION:
        return Request("POST", url(event_id, "/actions"), improvement)
    added = await flow.add_action(client, cast.handler, event_id, "IT")
    if action is EventAction.COMPLETE_ACTION:
        return Request(
            "PATCH",
            url(event_id, f"/actions/{added['id']}"),
            {"status": "done", "evidence": "Alert configured"},
        )
    assert action is EventAction.VERIFY_ACTION
    await flow.complete_action(client, cast.handler, event_id, added["id"])
    return Request(
        "POST",
        url(event_id, f"/actions/{added['id']}/verification"),
        {"effective": True, "note": "Works"},
    )


@pytest.fixture
async def people(make_actor: MakeActor) -> dict[str, Actor]:
    return {
        key: await make_actor(*roles, department=department)
        for key, (roles, department) in PEOPLE.items()
    }


def _cast(people: Mapping[str, Actor]) -> Cast:
    return Cast(
        desk=people["desk"],
        handler=people["lead_handler"],
        head=people["lead_head"],
        supervisor=people["supervisor"],
        reporter=people["own_reporter"],
    )


async def _send(client: httpx.AsyncClient, actor: Actor, request: Request) -> httpx.Response:
    return await client.request(
        request.method, request.path, json=request.body, headers=actor.headers
    )


@pytest.mark.parametrize("action", [a for a in EventAction if a is not EventAction.INTAKE], ids=str)
async def test_each_role_is_refused_what_it_may_not_do(
    client: httpx.AsyncClient, people: dict[str, Actor], action: EventAction
) -> None:
    request = await _prepare(client, _cast(people), action)
    wrong: list[tuple[str, int, Any]] = []
    done_by: list[str] = []
    # Refusals first: they change nothing, so every caller meets the same event.
    for key in sorted(PEOPLE, key=lambda k: k in ALLOWED[action]):
        response = await _send(client, people[key], request)
        if key in HIDDEN:
            expected: set[int] = {404}
        elif key not in ALLOWED[action]:
            expected = {403}
        else:
            # Allowed: the first succeeds; later ones may meet a state that moved on.
            expected = {200, 201, 409}
        if response.status_code not in expected:
            wrong.append((key, response.status_code, response.json()))
        elif response.status_code in (200, 201):
            done_by.append(key)
        elif response.status_code in (403, 404):
            problem = response.json()
            assert response.headers["content-type"].startswith(flow.PROBLEM)
            assert problem["type"].endswith("/forbidden" if expected == {403} else "/not-found")
    assert wrong == []
    # The first allowed caller really did it, and only refusals came before.
    assert done_by, "nobody allowed could do it"
    assert done_by[0] in ALLOWED[action]
    history = await flow.timeline(client, people["admin"], request.path.split("/")[3])
    assert history["chain_valid"] is True


async def test_everyone_may_report_an_event(
    client: httpx.AsyncClient, people: dict[str, Actor]
) -> None:
    for key, actor in people.items():
        response = await client.post("/v1/events", json=intake_body(), headers=actor.headers)
        assert response.status_code == 201, (key, response.text)


async def test_reporters_and_integrations_see_only_their_own_events(
    client: httpx.AsyncClient, people: dict[str, Actor]
) -> None:
    own = await flow.intake(client, people["own_reporter"], IT_LED)
    feed = await call(
        client,
        "POST",
        "/v1/events",
        people["integration"],
        json=intake_body(external_ref={"system": "zammad", "id": "T-4711"}),
        expect=201,
    )
    for viewer, event, visible in (
        ("own_reporter", own, True),
        ("other_reporter", own, False),
        ("integration", own, False),
        ("integration", feed, True),
        ("own_reporter", feed, False),
        ("lead_handler", feed, False),  # not routed yet: no department leads it
        ("desk", feed, True),
        ("supervisor", own, True),
    ):
        for path in ("", "/timeline", "/checklist", "/actions", "/notes"):
            response = await client.get(url(event["id"], path), headers=people[viewer].headers)
            assert response.status_code == (200 if visible else 404), (viewer, path)
        by_ref = await client.get(url(event["ref"]), headers=people[viewer].headers)
        assert by_ref.status_code == (200 if visible else 404)
    listed = await call(client, "GET", "/v1/events?limit=100", people["other_reporter"])
    assert {e["id"] for e in listed["items"]}.isdisjoint({own["id"], feed["id"]})
    listed = await call(client, "GET", "/v1/events?limit=100", people["integration"])
    assert [e["id"] for e in listed["items"]] == [feed["id"]]


async def test_unrelated_department_gets_404_not_403(
    client: httpx.AsyncClient, people: dict[str, Actor]
) -> None:
    cast = _cast(people)
    event = await flow.walk(client, cast, IT_LED, Status.IN_PROGRESS)
    for key in ("other_handler", "other_head"):
        actor = people[key]
        for method, path, body in (
            ("GET", "", None),
            ("PUT", "/plan", flow.plan_body(actor)),
            ("POST", "/notes", {"kind": "internal", "body": "Hello"}),
            ("POST", "/resolution", flow.RESOLUTION),
            ("POST", "/close", None),
        ):
            response = await client.request(
                method, url(event["id"], path), json=body, headers=actor.headers
            )
            assert response.status_code == 404, (key, path, response.text)
            assert "IT" not in response.text  # nothing about the event leaks
    # A cooperating department's handler sees the event and adds notes, but may not lead it.
    await call(
        client,
        "POST",
        url(event["id"], "/notes"),
        people["coop_handler"],
        json={"kind": "internal", "body": "OPS is on it"},
        expect=201,
    )
    response = await client.put(
        url(event["id"], "/plan"),
        json=flow.plan_body(people["coop_handler"]),
        headers=people["coop_handler"].headers,
    )
    assert response.status_code == 403
