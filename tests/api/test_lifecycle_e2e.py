"""One event per category from intake to closed, through real HTTP on real PostgreSQL
(product.md section 2; R3.1-R3.5, R6.2)."""

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.outbox.models import OutboxMessage
from app.rules.vocabulary import Status
from tests.api import flow
from tests.api.flow import Cast, MakeActor, Scenario, call, url
from tests.conftest import intake_body


async def _event(client: httpx.AsyncClient, cast: Cast, event_id: str) -> httpx.Response:
    response = await client.get(url(event_id), headers=cast.desk.headers)
    assert response.status_code == 200, response.text
    return response


async def _outbox_types(maker: async_sessionmaker[AsyncSession], event_id: str) -> list[str]:
    async with maker() as session:
        rows = await session.scalars(
            sa.select(OutboxMessage.type)
            .where(OutboxMessage.event_id == sa.cast(event_id, sa.Uuid))
            .order_by(OutboxMessage.id)
        )
        return list(rows)


@pytest.mark.parametrize("scenario", list(flow.SCENARIOS.values()), ids=list(flow.SCENARIOS))
async def test_event_walks_from_intake_to_closed(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
    scenario: Scenario,
) -> None:
    cast = await flow.make_cast(make_actor, scenario.lead)
    event = await flow.intake(client, cast.reporter, scenario)
    event_id = event["id"]
    assert event["status"] == "reported"
    assert event["ref"].startswith("EV-")
    assert event["urgent"] is scenario.urgent

    # Assessment by the intake desk (R3.2): the rules grade and route.
    event = await flow.classify(client, cast.desk, event_id, scenario)
    assert (event["status"], event["category"]) == ("classified", scenario.category)
    assert event["severity"] == scenario.severity
    assert event["grading"]["rule_ids"] or scenario.severity == "general"
    event = await flow.assign(client, cast.desk, event_id, assignee=cast.handler)
    assert event["status"] == "assigned"
    assert event["lead_department"] == scenario.lead
    assert sorted(event["cooperating_departments"]) == sorted(scenario.cooperating)
    assert event["assignee_id"] == str(cast.handler.id)

    # Plan and execution by the lead department (R3.3), conditional on the ETag.
    etag = (await _event(client, cast, event_id)).headers["ETag"]
    response = await client.put(
        url(event_id, "/plan"),
        json=flow.plan_body(cast.handler, cast.head),
        headers={**cast.handler.headers, "If-Match": etag},
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == f'"v{response.json()["version"]}"'
    event = response.json()
    assert event["status"] == "in_progress"
    assert [s["status"] for s in event["steps"]] == ["open", "open"]
    first, second = event["steps"]
    await call(
        client,
        "POST",
        url(event_id, "/notes"),
        cast.handler,
        json={"kind": "progress", "body": "First step under way"},
        expect=201,
    )
    await call(
        client,
        "PATCH",
        url(event_id, f"/steps/{first['id']}"),
        cast.handler,
        json={"status": "done"},
    )
    event = await call(
        client,
        "PATCH",
        url(event_id, f"/steps/{second['id']}"),
        cast.head,
        json={"status": "dropped", "note": "Not needed after step one"},
    )
    assert [s["status"] for s in event["steps"]] == ["done", "dropped"]
    event = await flow.resolve(client, cast.handler, event_id)
    assert event["status"] == "resolved"
    assert event["feedback_by"] is not None

    # Two-hop feedback (R3.4): lead department -> intake desk -> reporter.
    to_desk = await flow.feedback(client, cast.handler, event_id, "intake")
    assert to_desk["decision"] is None
    decided = await flow.decide(client, cast.desk, event_id, to_desk["id"])
    assert decided["decision"] == "accepted"
    assert (await _event(client, cast, event_id)).json()["status"] == "resolved"
    await flow.feedback(client, cast.desk, event_id, "reporter")
    event = (await _event(client, cast, event_id)).json()
    assert event["status"] == "feedback_given"
    assert event["review_by"] is not None

    # Review and verified improvement (R3.5).
    action = None
    if scenario.needs_actions:
        action = await flow.add_action(client, cast.handler, event_id, scenario.lead)
        assert action["status"] == "open"
    event = await flow.review(client, cast.head, event_id, meeting=scenario.needs_meeting)
    assert event["status"] == "reviewed"
    if action is not None:
        done = await flow.complete_action(client, cast.handler, event_id, action["id"])
        assert (done["status"], done["completed_by"]) == ("done", str(cast.handler.id))
        verifier = cast.head if scenario.category != "emergency" else cast.supervisor
        verified = await flow.verify(client, verifier, event_id, action["id"])
        assert verified["verified_effective"] is True
        assert verified["verified_by"] == str(verifier.id)

    # Satisfaction (R6.2) and close.
    recorded = await flow.satisfaction(client, cast.desk, event_id, score=4)
    assert (recorded["score"], recorded["source"]) == (4, "desk")
    event = await flow.close(client, cast.desk, event_id)
    assert event["status"] == "closed"
    assert event["closed_at"] is not None

    checklist = await call(client, "GET", url(event_id, "/checklist"), cast.desk)
    assert checklist["status"] == "closed"
    assert all(item["done"] for item in checklist["items"]), checklist
    assert checklist["allowed_actions"] == ["add_note"]

    history = await flow.timeline(client, cast.reporter, event_id)
    assert history["chain_valid"] is True
    actions = [entry["action"] for entry in history["items"]]
    expected = [
        "intake",
        "classify",
        "assign",
        "plan",
        "note",
        "step_done",
        "step_dropped",
        "resolve",
        "feedback_to_intake",
        "feedback_accepted",
        "feedback_to_reporter",
        *(["action_added"] if action else []),
        "review",
        *(["action_done", "action_verified"] if action else []),
        "satisfaction",
        "close",
    ]
    assert actions == expected
    assert [entry["seq"] for entry in history["items"]] == list(range(1, len(expected) + 1))
    # The reporter's view does not say who among the staff acted (issue 10, item 7); staff's does.
    assert history["items"][-1]["actor_id"] is None
    staff_history = await flow.timeline(client, cast.desk, event_id)
    assert staff_history["items"][-1]["actor_id"] == str(cast.desk.id)
    assert event["version"] == len(expected)

    outbox = await _outbox_types(session_maker, event_id)
    for kind in (
        "event.reported",
        "event.classified",
        "event.assigned",
        "event.plan_set",
        "event.step_updated",
        "event.resolved",
        "event.feedback_submitted",
        "event.feedback_accepted",
        "event.feedback_given",
        "event.reviewed",
        "event.satisfaction_recorded",
        "event.closed",
    ):
        assert kind in outbox, (kind, outbox)
    assert ("event.urgent" in outbox) is scenario.urgent
    if action is not None:
        assert {"event.action_added", "event.action_done", "event.action_verified"} <= set(outbox)


async def test_walk_helper_reaches_closed(client: httpx.AsyncClient, make_actor: MakeActor) -> None:
    """The shared walk (used by other tests) really closes the loop for the major complaint."""
    cast = await flow.make_cast(make_actor, flow.MAJOR_COMPLAINT.lead)
    event = await flow.walk(client, cast, flow.MAJOR_COMPLAINT, Status.CLOSED)
    assert (event["status"], event["severity"]) == ("closed", "major")
    assert (await flow.timeline(client, cast.desk, event["id"]))["chain_valid"] is True


async def test_event_response_carries_etag_and_version(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    response = await client.post("/v1/events", json=intake_body(), headers=cast.reporter.headers)
    assert response.status_code == 201
    assert response.headers["ETag"] == '"v1"'
    event_id = response.json()["id"]
    response = await client.post(
        url(event_id, "/classification"),
        json=flow.classification(flow.BUSINESS_ISSUE),
        headers=cast.desk.headers,
    )
    assert (response.headers["ETag"], response.json()["version"]) == ('"v2"', 2)
    response = await client.get(url(event_id), headers=cast.reporter.headers)
    assert (response.headers["ETag"], response.json()["version"]) == ('"v2"', 2)
