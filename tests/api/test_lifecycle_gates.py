"""Every gate tried too early and refused with what is missing; returns, reopens, cancels,
survey links, checklist and optimistic locking (product.md sections 2 and 4; R3.3-R3.5, R6.2)."""

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.models import SurveyToken
from app.rules.vocabulary import Role, Status
from tests.api import flow
from tests.api.flow import (
    MAJOR_COMPLAINT,
    Cast,
    MakeActor,
    call,
    missing,
    not_allowed,
    refused,
    url,
)
from tests.conftest import intake_body

# What feedback_given and reviewed allow besides their transitions (rules.lifecycle.IN_STATUS).
AFTER_FEEDBACK = (
    "add_note",
    "record_satisfaction",
    "create_survey_link",
    "add_action",
    "complete_action",
    "verify_action",
)


async def _status(client: httpx.AsyncClient, cast: Cast, event_id: str) -> str:
    status: str = (await call(client, "GET", url(event_id), cast.desk))["status"]
    return status


async def test_major_complaint_every_gate_refused_until_its_content_is_there(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "CS")
    admin = await make_actor(Role.ADMIN)
    it_handler = await make_actor(Role.HANDLER, department="IT")
    log_handler = await make_actor(Role.HANDLER, department="LOG")

    # Intake: a reporter nobody can reach back is still recorded (R3.1.2); the contact is a
    # gate of the feedback to the reporter (tests/api/test_intake.py).
    no_contact = intake_body(reporter={"name": "Walk-in customer"})
    await flow.call(client, "POST", "/v1/events", cast.desk, json=no_contact, expect=201)
    event = await flow.intake(client, cast.reporter, MAJOR_COMPLAINT)
    event_id = event["id"]
    assert await not_allowed(
        client, "PUT", url(event_id, "/plan"), admin, json=flow.plan_body(cast.handler)
    ) == ["classify", "cancel", "add_note"]
    assert await not_allowed(client, "POST", url(event_id, "/assignment"), cast.desk, json={}) == [
        "classify",
        "cancel",
        "add_note",
    ]

    # Classification: key account and 150 customers make it major.
    event = await flow.classify(client, cast.desk, event_id, MAJOR_COMPLAINT)
    assert event["severity"] == "major"
    assert {"major.key_account_complaint", "major.customers_affected"} <= set(
        event["grading"]["rule_ids"]
    )
    assert await not_allowed(client, "POST", url(event_id, "/close"), cast.desk) == [
        "classify",
        "assign",
        "cancel",
        "add_note",
    ]

    # Assignment: a complaint is led by customer service; an override needs a reason and the
    # assignee must belong to the lead department.
    codes = await missing(
        client,
        "POST",
        url(event_id, "/assignment"),
        cast.desk,
        json={"lead_department": "SALES", "assignee_id": str(it_handler.id)},
    )
    assert codes == [
        "routing_override.reason",
        "complaint.lead_customer_service",
        "assignee.lead_department",
    ]
    assert await missing(
        client,
        "POST",
        url(event_id, "/assignment"),
        cast.desk,
        json={"assignee_id": str(it_handler.id)},
    ) == ["assignee.lead_department"]
    event = await flow.assign(client, cast.desk, event_id, assignee=cast.handler)
    assert (event["lead_department"], event["cooperating_departments"]) == ("CS", ["LOG"])

    # Plan: a major event records who the plan was discussed with (R3.3.1).
    assert await not_allowed(
        client, "POST", url(event_id, "/resolution"), cast.handler, json=flow.RESOLUTION
    ) == ["classify", "assign", "plan", "cancel", "add_note"]
    assert await missing(
        client,
        "PUT",
        url(event_id, "/plan"),
        cast.handler,
        json=flow.plan_body(cast.handler, log_handler, discussed_with=()),
    ) == ["plan.discussed_with"]
    event = await call(
        client, "PUT", url(event_id, "/plan"), cast.handler, json=flow.plan_body(cast.handler)
    )
    # A PUT replaces the plan while work is in progress.
    event = await call(
        client,
        "PUT",
        url(event_id, "/plan"),
        cast.handler,
        json=flow.plan_body(cast.handler, log_handler),
    )
    assert event["status"] == "in_progress"
    assert len(event["steps"]) == 2
    first, second = event["steps"]

    # Resolution: every step done or dropped; dropping needs a reason.
    assert await missing(
        client, "POST", url(event_id, "/resolution"), cast.handler, json=flow.RESOLUTION
    ) == ["steps.open"]
    await call(
        client,
        "PATCH",
        url(event_id, f"/steps/{first['id']}"),
        cast.handler,
        json={"status": "done"},
    )
    assert await missing(
        client, "POST", url(event_id, "/resolution"), cast.handler, json=flow.RESOLUTION
    ) == ["steps.open"]
    await refused(
        client,
        "PATCH",
        url(event_id, f"/steps/{second['id']}"),
        log_handler,
        json={"status": "dropped"},
        status=422,
    )
    # The step's owner may mark their own step even without the lead department's grant.
    await call(
        client,
        "PATCH",
        url(event_id, f"/steps/{second['id']}"),
        log_handler,
        json={"status": "done"},
    )
    await refused(
        client,
        "PATCH",
        url(event_id, f"/steps/{second['id']}"),
        cast.handler,
        json={"status": "done"},
        status=409,
    )
    assert await not_allowed(
        client, "PUT", url(event_id, "/review"), cast.handler, json=flow.review_body(meeting=True)
    ) == ["plan", "resolve", "add_note", "update_step"]
    await flow.resolve(client, cast.handler, event_id)

    # Feedback: the reporter hears the result only after the desk accepted it (R3.4.1).
    assert await missing(
        client, "POST", url(event_id, "/feedback"), cast.desk, json=flow.feedback_body("reporter")
    ) == ["feedback.intake_accepted"]
    to_desk = await flow.feedback(client, cast.handler, event_id, "intake")
    await refused(
        client,
        "POST",
        url(event_id, "/feedback"),
        cast.handler,
        json=flow.feedback_body("intake"),
        status=409,
    )
    assert await missing(
        client, "POST", url(event_id, "/feedback"), cast.desk, json=flow.feedback_body("reporter")
    ) == ["feedback.intake_accepted"]
    await refused(
        client,
        "POST",
        url(event_id, "/satisfaction"),
        cast.desk,
        json={"score": 5},
        status=409,
    )
    await flow.decide(client, cast.desk, event_id, to_desk["id"])
    await flow.feedback(client, cast.desk, event_id, "reporter")
    assert await _status(client, cast, event_id) == "feedback_given"
    assert await not_allowed(client, "POST", url(event_id, "/close"), cast.desk) == [
        "review",
        "reopen",
        *AFTER_FEEDBACK,
    ]

    # Review: a major event needs its meeting and at least one improvement action (R3.5).
    assert await missing(
        client,
        "PUT",
        url(event_id, "/review"),
        cast.handler,
        json=flow.review_body(meeting=False),
    ) == ["review.meeting", "review.actions"]
    assert await missing(
        client, "PUT", url(event_id, "/review"), cast.handler, json=flow.review_body(meeting=True)
    ) == ["review.actions"]
    action = await flow.add_action(client, cast.handler, event_id, "LOG")
    assert await missing(
        client,
        "PUT",
        url(event_id, "/review"),
        cast.handler,
        json=flow.review_body(meeting=False),
    ) == ["review.meeting"]
    event = await flow.review(client, cast.handler, event_id, meeting=True)
    assert event["status"] == "reviewed"

    # Close: every action done and verified by someone else, satisfaction recorded (R6.2).
    assert await missing(client, "POST", url(event_id, "/close"), cast.desk) == [
        "actions.done",
        "satisfaction",
    ]
    await flow.complete_action(client, log_handler, event_id, action["id"])
    assert await missing(client, "POST", url(event_id, "/close"), cast.desk) == [
        "actions.verified",
        "satisfaction",
    ]
    await flow.verify(client, cast.supervisor, event_id, action["id"])
    assert await missing(client, "POST", url(event_id, "/close"), cast.desk) == ["satisfaction"]
    assert await missing(
        client,
        "POST",
        url(event_id, "/satisfaction"),
        cast.desk,
        json={"unreachable": True, "attempts": 2},
    ) == ["satisfaction.attempts"]
    recorded = await call(
        client,
        "POST",
        url(event_id, "/satisfaction"),
        cast.desk,
        json={"unreachable": True, "attempts": 3},
        expect=201,
    )
    assert (recorded["unreachable"], recorded["attempts"]) == (True, 3)
    event = await flow.close(client, cast.desk, event_id)
    assert event["status"] == "closed"

    # A closed event stays closed; the same problem again is a new, linked event.
    assert await not_allowed(
        client, "POST", url(event_id, "/reopen"), cast.desk, json={"reason": "Again"}
    ) == ["add_note"]
    assert await not_allowed(client, "POST", url(event_id, "/close"), cast.desk) == ["add_note"]
    again = await call(
        client,
        "POST",
        "/v1/events",
        cast.desk,
        json=intake_body(recurrence_of=event_id),
        expect=201,
    )
    assert again["recurrence_of"] == event_id
    assert (await flow.timeline(client, cast.desk, event_id))["chain_valid"] is True


async def test_checklist_lists_every_gate_of_the_path(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "CS")
    event = await flow.walk(client, cast, MAJOR_COMPLAINT, Status.RESOLVED)
    checklist = await call(client, "GET", url(event["id"], "/checklist"), cast.handler)
    assert checklist["status"] == "resolved"
    # What the status allows (issue 11 item 4): its transitions, then what keeps the status.
    assert checklist["allowed_actions"] == [
        "give_feedback",
        "reopen",
        "return_feedback",
        "add_note",
        "feedback_to_intake",
        "decide_feedback",
        "add_action",
        "complete_action",
        "verify_action",
    ]
    items = {item["code"]: item for item in checklist["items"]}
    stages = {item["stage"] for item in checklist["items"]}
    assert stages == {s.value for s in flow.HAPPY_PATH}
    for code in (
        "title",
        "reporter.contact",
        "category",
        "subcategory",
        "impact",
        "lead_department",
        "complaint.lead_customer_service",
        "assignee.lead_department",
        "plan.steps",
        "plan.discussed_with",
        "steps.open",
        "resolution.result",
        "resolution.measures",
    ):
        assert items[code]["done"] is True, items[code]
    for code in (
        "feedback.intake_accepted",
        "feedback.reporter",
        "review.summary",
        "review.root_cause",
        "review.meeting",
        "review.actions",
        "satisfaction",
    ):
        assert items[code]["done"] is False, items[code]
        assert items[code]["detail"]
    assert all(isinstance(item["detail"], str) for item in checklist["items"])

    # A general event's path has no meeting or actions to check.
    general = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.REPORTED)
    checklist = await call(client, "GET", url(general["id"], "/checklist"), cast.desk)
    codes = {item["code"] for item in checklist["items"]}
    assert "review.meeting" not in codes
    assert "review.actions" not in codes
    assert checklist["allowed_actions"] == ["classify", "cancel", "add_note"]


async def test_returned_feedback_sends_the_event_back_to_work(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.RESOLVED)
    event_id = event["id"]
    to_desk = await flow.feedback(client, cast.handler, event_id, "intake")
    await refused(
        client,
        "POST",
        url(event_id, f"/feedback/{to_desk['id']}/decision"),
        cast.desk,
        json={"decision": "return"},
        status=422,
    )
    returned = await flow.decide(
        client, cast.desk, event_id, to_desk["id"], "return", "The customer was not called back"
    )
    assert (returned["decision"], returned["decision_note"]) == (
        "returned",
        "The customer was not called back",
    )
    event = await call(client, "GET", url(event_id), cast.desk)
    assert event["status"] == "in_progress"
    assert event["resolved_at"] is None
    await refused(
        client,
        "POST",
        url(event_id, f"/feedback/{to_desk['id']}/decision"),
        cast.desk,
        json={"decision": "accept"},
        status=409,
    )
    entry = (await flow.timeline(client, cast.desk, event_id))["items"][-1]
    assert (entry["action"], entry["note"]) == (
        "feedback_returned",
        "The customer was not called back",
    )
    assert entry["after"]["status"] == "in_progress"

    # The next loop needs fresh, accepted feedback before the reporter hears anything.
    await flow.resolve(client, cast.handler, event_id)
    assert await missing(
        client, "POST", url(event_id, "/feedback"), cast.desk, json=flow.feedback_body("reporter")
    ) == ["feedback.intake_accepted"]
    await flow.give_feedback(client, cast, event_id)
    assert await _status(client, cast, event_id) == "feedback_given"


async def test_self_verification_refused_and_not_effective_reopens_the_action(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "SAF")
    event = await flow.walk(client, cast, flow.EMERGENCY, Status.FEEDBACK_GIVEN)
    event_id = event["id"]
    # The walk planned one improvement action of the lead department for this important event.
    (head_action,) = await flow.actions_of(client, cast.desk, event_id)
    await flow.review(client, cast.handler, event_id, meeting=False)

    # A head who completed the measure may not also verify it.
    await flow.complete_action(client, cast.head, event_id, head_action["id"])
    problem = await refused(
        client,
        "POST",
        url(event_id, f"/actions/{head_action['id']}/verification"),
        cast.head,
        json={"effective": True, "note": "Looks fine to me"},
        status=403,
    )
    assert problem["type"].endswith("self-verification"), problem

    # Someone else finds it not effective: the action is open again and must be redone.
    reopened = await flow.verify(
        client, cast.supervisor, event_id, head_action["id"], effective=False
    )
    assert (reopened["status"], reopened["verified_effective"]) == ("open", False)
    assert reopened["completed_by"] is None
    await refused(
        client,
        "POST",
        url(event_id, f"/actions/{head_action['id']}/verification"),
        cast.supervisor,
        json={"effective": True, "note": "Again"},
        status=409,
    )
    assert await missing(client, "POST", url(event_id, "/close"), cast.desk) == ["actions.done"]
    await flow.complete_action(client, cast.handler, event_id, head_action["id"])
    assert await missing(client, "POST", url(event_id, "/close"), cast.desk) == ["actions.verified"]
    await flow.verify(client, cast.head, event_id, head_action["id"])
    assert (await flow.close(client, cast.desk, event_id))["status"] == "closed"


async def test_survey_link_works_once_and_reveals_only_ref_and_title(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "CS")
    event = await flow.walk(client, cast, MAJOR_COMPLAINT, Status.RESOLVED)
    event_id = event["id"]
    await refused(client, "POST", url(event_id, "/survey-link"), cast.desk, status=409)
    await flow.give_feedback(client, cast, event_id)
    await refused(client, "POST", url(event_id, "/survey-link"), cast.handler, status=403)
    link = await call(client, "POST", url(event_id, "/survey-link"), cast.desk, expect=201)
    assert set(link) == {"token", "url", "expires_at"}
    assert link["url"].endswith(f"/v1/surveys/{link['token']}")
    assert datetime.fromisoformat(link["expires_at"]) > datetime.now(UTC) + timedelta(hours=1)

    shown = await call(client, "GET", f"/v1/surveys/{link['token']}", None)
    assert shown == {
        "event_ref": event["ref"],
        "title": event["title"],
        "answered": False,
        "expires_at": shown["expires_at"],
    }
    answered = await call(
        client,
        "POST",
        f"/v1/surveys/{link['token']}",
        None,
        json={"score": 2, "comment": "Took too long"},
    )
    assert answered["answered"] is True
    problem = await refused(
        client, "POST", f"/v1/surveys/{link['token']}", None, json={"score": 5}, status=409
    )
    assert problem["type"].endswith("survey-answered")
    assert (await call(client, "GET", f"/v1/surveys/{link['token']}", None))["answered"] is True
    await refused(client, "GET", "/v1/surveys/svy_not-a-real-token", None, status=404)

    # The answer counts as the reporter's satisfaction: no second one from the desk.
    await refused(
        client, "POST", url(event_id, "/satisfaction"), cast.desk, json={"score": 5}, status=409
    )
    checklist = await call(client, "GET", url(event_id, "/checklist"), cast.desk)
    assert {i["code"]: i["done"] for i in checklist["items"]}["satisfaction"] is True
    entry = (await flow.timeline(client, cast.desk, event_id))["items"][-1]
    assert (entry["action"], entry["actor_id"]) == ("survey_answer", None)


async def test_survey_link_expires(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(
        client, cast, flow.BUSINESS_ISSUE, Status.FEEDBACK_GIVEN, satisfied=False
    )
    link = await call(client, "POST", url(event["id"], "/survey-link"), cast.desk, expect=201)
    async with session_maker() as session:
        await session.execute(
            sa.update(SurveyToken)
            .where(SurveyToken.event_id == uuid.UUID(event["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        await session.commit()
    problem = await refused(client, "GET", f"/v1/surveys/{link['token']}", None, status=410)
    assert problem["type"].endswith("survey-expired")
    await refused(
        client, "POST", f"/v1/surveys/{link['token']}", None, json={"score": 4}, status=410
    )


async def test_unreachable_needs_the_policy_attempts(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.REVIEWED, satisfied=False)
    event_id = event["id"]
    assert await missing(client, "POST", url(event_id, "/close"), cast.desk) == ["satisfaction"]
    for attempts in (0, 1, 2):
        assert await missing(
            client,
            "POST",
            url(event_id, "/satisfaction"),
            cast.desk,
            json={"unreachable": True, "attempts": attempts},
        ) == ["satisfaction.attempts"]
    await refused(
        client,
        "POST",
        url(event_id, "/satisfaction"),
        cast.desk,
        json={"unreachable": True},
        status=422,
    )
    await call(
        client,
        "POST",
        url(event_id, "/satisfaction"),
        cast.desk,
        json={"unreachable": True, "attempts": 4},
        expect=201,
    )
    assert (await flow.close(client, cast.desk, event_id))["status"] == "closed"


async def test_stale_if_match_is_refused_with_412(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.CLASSIFIED)
    event_id = event["id"]
    response = await client.get(url(event_id), headers=cast.desk.headers)
    old_etag = response.headers["ETag"]
    assert old_etag == f'"v{response.json()["version"]}"'

    changed = await flow.assign(client, cast.desk, event_id)
    assert changed["version"] == response.json()["version"] + 1
    problem = await refused(
        client,
        "POST",
        url(event_id, "/assignment"),
        cast.desk,
        json={},
        headers={"If-Match": old_etag},
        status=412,
    )
    assert problem["type"].endswith("precondition-failed")
    assert problem["current_version"] == changed["version"]
    await refused(
        client,
        "POST",
        url(event_id, "/cancel"),
        cast.desk,
        json={"reason": "Stale view"},
        headers={"If-Match": old_etag},
        status=412,
    )
    assert await _status(client, cast, event_id) == "assigned"
    # The current ETag, a list containing it, and * are accepted; a weak ETag never matches.
    current = f'"v{changed["version"]}"'
    event = await call(
        client,
        "PUT",
        url(event_id, "/plan"),
        cast.handler,
        json=flow.plan_body(cast.handler),
        headers={"If-Match": current},
    )
    await refused(
        client,
        "PATCH",
        url(event_id, f"/steps/{event['steps'][0]['id']}"),
        cast.handler,
        json={"status": "done"},
        headers={"If-Match": f'W/"v{event["version"]}"'},
        status=412,
    )
    await call(
        client,
        "PATCH",
        url(event_id, f"/steps/{event['steps'][0]['id']}"),
        cast.handler,
        json={"status": "done"},
        headers={"If-Match": f'"v999", "v{event["version"]}"'},
    )
    await call(
        client,
        "POST",
        url(event_id, "/resolution"),
        cast.handler,
        json=flow.RESOLUTION,
        headers={"If-Match": "*"},
    )
    await refused(
        client,
        "POST",
        url(event_id, "/reopen"),
        cast.desk,
        json={"reason": "x"},
        headers={"If-Match": "garbage"},
        status=412,
    )


async def test_cancel_before_work_starts_with_reason_and_duplicate(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    original = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.ASSIGNED)
    for status in (Status.REPORTED, Status.CLASSIFIED, Status.ASSIGNED):
        event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, status)
        await refused(client, "POST", url(event["id"], "/cancel"), cast.desk, json={}, status=422)
        await refused(
            client,
            "POST",
            url(event["id"], "/cancel"),
            cast.desk,
            json={"reason": "Same invoices", "duplicate_of": str(uuid.uuid4())},
            status=422,
        )
        cancelled = await call(
            client,
            "POST",
            url(event["id"], "/cancel"),
            cast.desk,
            json={"reason": "Same invoices", "duplicate_of": original["id"]},
        )
        assert cancelled["status"] == "cancelled"
        assert cancelled["duplicate_of"] == original["id"]
        assert cancelled["cancel_reason"] == "Same invoices"
        assert await not_allowed(
            client,
            "POST",
            url(event["id"], "/classification"),
            cast.desk,
            json=flow.classification(flow.BUSINESS_ISSUE),
        ) == ["add_note"]
    plain = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.REPORTED)
    cancelled = await call(
        client, "POST", url(plain["id"], "/cancel"), cast.desk, json={"reason": "Test call"}
    )
    assert (cancelled["status"], cancelled["duplicate_of"]) == ("cancelled", None)


async def test_cancel_after_plan_is_not_allowed(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.IN_PROGRESS)
    assert await not_allowed(
        client, "POST", url(event["id"], "/cancel"), cast.desk, json={"reason": "Too late"}
    ) == ["plan", "resolve", "add_note", "update_step"]


async def test_reopen_from_resolved_feedback_given_and_reviewed(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "OPS")
    for status in (Status.RESOLVED, Status.FEEDBACK_GIVEN, Status.REVIEWED):
        event = await flow.walk(client, cast, flow.COORDINATION, status)
        event_id = event["id"]
        await refused(client, "POST", url(event_id, "/reopen"), cast.desk, json={}, status=422)
        reopened = await call(
            client,
            "POST",
            url(event_id, "/reopen"),
            cast.head,
            json={"reason": "The reporter is not satisfied"},
        )
        assert reopened["status"] == "in_progress"
        assert reopened["resolved_at"] is None
        entry = (await flow.timeline(client, cast.desk, event_id))["items"][-1]
        assert (entry["action"], entry["note"]) == ("reopen", "The reporter is not satisfied")
        assert entry["before"] == {"status": status.value}
        # The next loop needs fresh feedback and a fresh satisfaction.
        checklist = await call(client, "GET", url(event_id, "/checklist"), cast.desk)
        done = {i["code"]: i["done"] for i in checklist["items"]}
        assert done["feedback.intake_accepted"] is False
        assert done["satisfaction"] is False
        await flow.resolve(client, cast.handler, event_id)
        await flow.give_feedback(client, cast, event_id)
        assert await _status(client, cast, event_id) == "feedback_given"


async def test_closed_event_is_never_reopened_a_recurrence_links_it(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    closed = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.CLOSED)
    assert await not_allowed(
        client, "POST", url(closed["id"], "/reopen"), cast.desk, json={"reason": "It is back"}
    ) == ["add_note"]
    assert await not_allowed(
        client, "POST", url(closed["id"], "/cancel"), cast.desk, json={"reason": "It is back"}
    ) == ["add_note"]
    recurrence = await flow.intake(
        client, cast.reporter, flow.BUSINESS_ISSUE, recurrence_of=closed["id"]
    )
    assert recurrence["recurrence_of"] == closed["id"]
    # Classification may also name the event it recurs.
    other = await flow.intake(client, cast.reporter, flow.BUSINESS_ISSUE)
    classified = await call(
        client,
        "POST",
        url(other["id"], "/classification"),
        cast.desk,
        json=flow.classification(flow.BUSINESS_ISSUE, recurrence_of=closed["id"]),
    )
    assert classified["recurrence_of"] == closed["id"]
    await refused(
        client,
        "POST",
        "/v1/events",
        cast.reporter,
        json=intake_body(recurrence_of=str(uuid.uuid4())),
        status=422,
    )


async def test_action_department_carries_out_its_action_without_leading_the_event(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """R3.5.2, R4.3: an improvement action may belong to a department that is not involved;
    its staff see the event, complete and verify that action, and nothing else of the event."""
    cast = await flow.make_cast(make_actor, "SAF")
    hr_handler = await make_actor(Role.HANDLER, department="HR")
    hr_head = await make_actor(Role.DEPT_HEAD, department="HR")
    it_head = await make_actor(Role.DEPT_HEAD, department="IT")
    event = await flow.walk(client, cast, flow.EMERGENCY, Status.FEEDBACK_GIVEN)
    event_id = event["id"]
    (own,) = await flow.actions_of(client, cast.desk, event_id)
    training = await flow.add_action(client, cast.head, event_id, "HR")

    # The action's department sees the event but may act only on its own action.
    assert (await client.get(url(event_id), headers=hr_handler.headers)).status_code == 200
    await refused(
        client,
        "PATCH",
        url(event_id, f"/actions/{own['id']}"),
        hr_handler,
        json={"status": "done", "evidence": "x"},
        status=403,
    )
    await refused(
        client,
        "PATCH",
        url(event_id, f"/actions/{training['id']}"),
        it_head,
        json={"status": "done", "evidence": "x"},
        status=404,
    )
    done = await flow.complete_action(client, hr_handler, event_id, training["id"])
    assert done["completed_by"] == str(hr_handler.id)
    await refused(
        client,
        "POST",
        url(event_id, f"/actions/{training['id']}/verification"),
        hr_handler,
        json={"effective": True, "note": "Mine"},
        status=403,
    )
    verified = await flow.verify(client, hr_head, event_id, training["id"])
    assert verified["verified_effective"] is True
    entry = (await flow.timeline(client, cast.desk, event_id))["items"][-1]
    assert (entry["action"], entry["actor_id"]) == ("action_verified", str(hr_head.id))


async def test_no_survey_link_once_satisfaction_is_recorded_and_old_links_die_on_reopen(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(
        client, cast, flow.BUSINESS_ISSUE, Status.FEEDBACK_GIVEN, satisfied=False
    )
    link = await client.post(url(event["id"], "/survey-link"), headers=cast.desk.headers)
    assert link.status_code == 201
    token = link.json()["token"]
    reopened = await client.post(
        url(event["id"], "/reopen"),
        json={"reason": "Customer called back"},
        headers=cast.desk.headers,
    )
    assert reopened.status_code == 200
    assert (await client.get(f"/v1/surveys/{token}")).status_code == 410
    await flow.resolve(client, cast.handler, event["id"])
    await flow.give_feedback(client, cast, event["id"])
    assert (await client.post(f"/v1/surveys/{token}", json={"score": 5})).status_code == 410
    recorded = await client.post(
        url(event["id"], "/satisfaction"), json={"score": 4}, headers=cast.desk.headers
    )
    assert recorded.status_code == 201
    refused_link = await client.post(url(event["id"], "/survey-link"), headers=cast.desk.headers)
    assert refused_link.status_code == 409
    assert refused_link.json()["type"].endswith("/survey-answered")


async def test_step_owner_from_another_department_sees_and_updates_their_step(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """R3.3.1: the plan names people responsible; an owner outside the departments still acts."""
    cast = await flow.make_cast(make_actor, "IT")
    outsider = await make_actor(Role.HANDLER, department="HR")
    event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.ASSIGNED)
    plan = await client.put(
        url(event["id"], "/plan"),
        json={
            "steps": [
                {
                    "title": "Train staff",
                    "owner_id": str(outsider.id),
                    "due_at": "2030-01-01T00:00:00Z",
                }
            ]
        },
        headers=cast.handler.headers,
    )
    assert plan.status_code == 200, plan.text
    step_id = plan.json()["steps"][0]["id"]
    assert (await client.get(url(event["id"]), headers=outsider.headers)).status_code == 200
    done = await client.patch(
        url(event["id"], f"/steps/{step_id}"), json={"status": "done"}, headers=outsider.headers
    )
    assert done.status_code == 200, done.text
