"""Links to other events (`recurrence_of`, `duplicate_of`) do not reveal which ids exist
(issue 10, item 8; product.md section 1: "no existence leak").

An event the caller may not see and an id no event has get the same 422 problem, as reading
answers both with the same 404.
"""

import uuid
from typing import Any

import httpx

from app.core.db import uuid7
from app.rules.vocabulary import Role, Status
from tests.api import flow
from tests.api.flow import call, refused, url
from tests.conftest import Actor, MakeActor, intake_body


def _comparable(problem: dict[str, Any]) -> dict[str, Any]:
    """The problem without `instance` (the request's own path)."""
    return {k: v for k, v in problem.items() if k != "instance"}


async def _twin_refusals(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    actor: Actor,
    body: dict[str, Any],
    field: str,
    hidden: str,
) -> dict[str, Any]:
    """The problems for `hidden` and for a random unknown id in `field`: equal, and returned."""
    problems = [
        await refused(client, method, path, actor, json={**body, field: ident}, status=422)
        for ident in (hidden, str(uuid7()))
    ]
    assert _comparable(problems[0]) == _comparable(problems[1])
    assert [e["field"] for e in problems[0]["errors"]] == [field]
    return problems[0]


async def test_intake_recurrence_of_an_event_you_cannot_see_is_refused_like_an_unknown_id(
    client: httpx.AsyncClient, make_actor: MakeActor, reporter: Actor
) -> None:
    """A reporter, an integration and a handler of another department cannot probe ids."""
    someone = await make_actor(Role.REPORTER, department="HR")
    theirs = await call(client, "POST", "/v1/events", someone, json=intake_body(), expect=201)
    bridge = await make_actor(Role.INTEGRATION)
    it_handler = await make_actor(Role.HANDLER, department="IT")
    for actor in (reporter, bridge, it_handler):
        await refused(client, "GET", url(theirs["id"]), actor, status=404)
        problem = await _twin_refusals(
            client, "POST", "/v1/events", actor, intake_body(), "recurrence_of", theirs["id"]
        )
        assert theirs["id"] not in str(problem)
    # Their own earlier event, and any event for the intake desk, are accepted.
    mine = await call(client, "POST", "/v1/events", reporter, json=intake_body(), expect=201)
    again = await call(
        client,
        "POST",
        "/v1/events",
        reporter,
        json=intake_body(recurrence_of=mine["id"]),
        expect=201,
    )
    assert again["recurrence_of"] == mine["id"]
    desk = await make_actor(Role.INTAKE_AGENT, department="CS")
    linked = await call(
        client, "POST", "/v1/events", desk, json=intake_body(recurrence_of=theirs["id"]), expect=201
    )
    assert linked["recurrence_of"] == theirs["id"]


async def test_a_handler_links_only_events_of_its_department(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """Visibility is the reading rule: a department's event is visible to its handler."""
    cast = await flow.make_cast(make_actor, "IT")
    it_event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.ASSIGNED)
    ops_handler = await make_actor(Role.HANDLER, department="OPS")
    await _twin_refusals(
        client, "POST", "/v1/events", ops_handler, intake_body(), "recurrence_of", it_event["id"]
    )
    linked = await call(
        client,
        "POST",
        "/v1/events",
        cast.handler,
        json=intake_body(recurrence_of=it_event["id"]),
        expect=201,
    )
    assert linked["recurrence_of"] == it_event["id"]


async def test_classification_and_cancel_answer_an_unknown_link_like_intake(
    client: httpx.AsyncClient, make_actor: MakeActor, reporter: Actor
) -> None:
    """The same problem wherever a link is given; the roles that classify and cancel see
    every event today, so for them only unknown ids are refused."""
    cast = await flow.make_cast(make_actor, "IT")
    unknown = str(uuid.uuid4())
    at_intake = await refused(
        client,
        "POST",
        "/v1/events",
        reporter,
        json=intake_body(recurrence_of=unknown),
        status=422,
    )
    event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.REPORTED)
    at_classification = await refused(
        client,
        "POST",
        url(event["id"], "/classification"),
        cast.desk,
        json=flow.classification(flow.BUSINESS_ISSUE, recurrence_of=unknown),
        status=422,
    )
    at_cancel = await refused(
        client,
        "POST",
        url(event["id"], "/cancel"),
        cast.desk,
        json={"reason": "Duplicate", "duplicate_of": unknown},
        status=422,
    )
    assert at_cancel["detail"] == at_classification["detail"] == at_intake["detail"]
    assert unknown not in at_intake["detail"]
    assert [e["field"] for e in at_cancel["errors"]] == ["duplicate_of"]
    assert [e["field"] for e in at_classification["errors"]] == ["recurrence_of"]
