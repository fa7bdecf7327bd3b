"""Assignment on real PostgreSQL (R3.2.3; product.md sections 2, 3 and 7)."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.rules.vocabulary import Role
from tests.api.flow import assigned as _assigned
from tests.api.flow import at as _at
from tests.api.flow import classified_event as _classified_event
from tests.api.flow import post_assignment as _assign
from tests.conftest import Actor, MakeActor, intake_body


@pytest.mark.parametrize(
    ("category", "subcategory", "involved", "lead", "cooperating", "rule_id"),
    [
        (
            "business_issue",
            "system_failure",
            [],
            "IT",
            [],
            "routing.business_issue.subcategory",
        ),
        ("business_issue", "workflow", [], "OPS", [], "routing.business_issue.subcategory"),
        (
            "business_issue",
            "system_failure",
            ["SALES"],
            "IT",
            ["SALES"],
            "routing.business_issue.subcategory",
        ),
        (
            "business_issue",
            "data_error",
            ["LOG", "SALES"],
            "LOG",
            ["SALES"],
            "routing.business_issue.first_involved",
        ),
        ("business_issue", "data_error", [], "OPS", [], "routing.business_issue.fallback"),
        ("business_issue", "other", [], "OPS", [], "routing.business_issue.fallback"),
        (
            "customer_complaint",
            "product_quality",
            ["LOG", "SALES"],
            "CS",
            ["LOG", "SALES"],
            "routing.customer_complaint",
        ),
        ("customer_complaint", "delivery_time", [], "CS", [], "routing.customer_complaint"),
        (
            "customer_complaint",
            "service_attitude",
            ["CS", "SALES"],
            "CS",
            ["SALES"],
            "routing.customer_complaint",
        ),
        (
            "internal_coordination",
            "communication",
            ["OPS", "LOG", "HR"],
            "OPS",
            ["LOG", "HR"],
            "routing.internal_coordination",
        ),
        (
            "internal_coordination",
            "task_allocation",
            ["SALES", "LOG"],
            "SALES",
            ["LOG"],
            "routing.internal_coordination",
        ),
        ("emergency", "natural_disaster", [], "ADM", [], "routing.emergency.plan"),
        ("emergency", "safety_accident", [], "SAF", [], "routing.emergency.plan"),
        ("emergency", "public_health", ["IT"], "HR", ["IT"], "routing.emergency.plan"),
        ("emergency", "other", [], "ADM", [], "routing.emergency.plan"),
    ],
)
async def test_policy_routing_decides_without_a_lead(
    client: httpx.AsyncClient,
    desk: Actor,
    category: str,
    subcategory: str,
    involved: list[str],
    lead: str,
    cooperating: list[str],
    rule_id: str,
) -> None:
    event = await _classified_event(client, desk, category, subcategory, involved=involved)
    assigned = await _assigned(client, desk, event["id"])
    assert assigned["status"] == "assigned"
    assert assigned["lead_department"] == lead
    assert assigned["cooperating_departments"] == cooperating
    assert assigned["assignee_id"] is None
    routing = assigned["routing"]
    assert routing["rule_id"] == rule_id
    assert routing["policy_version"] == 1
    assert routing["overridden"] is False
    assert routing["proposed_lead"] == lead


@pytest.mark.parametrize("involved", [[], ["OPS"]])
async def test_coordination_needs_two_departments(
    client: httpx.AsyncClient, desk: Actor, involved: list[str]
) -> None:
    event = await _classified_event(
        client, desk, "internal_coordination", "communication", involved=involved
    )
    response = await _assign(client, desk, event["id"])
    assert response.status_code == 409, response.text
    assert response.json()["missing"] == ["coordination.departments"]
    got = await client.get(f"/v1/events/{event['id']}", headers=desk.headers)
    assert got.json()["status"] == "classified"
    assert got.json()["lead_department"] is None


async def test_coordination_with_departments_named_at_assignment(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _classified_event(client, desk, "internal_coordination", "task_allocation")
    assigned = await _assigned(
        client,
        desk,
        event["id"],
        lead_department="OPS",
        cooperating_departments=["LOG"],
        override_reason="Departments identified after intake",
    )
    assert assigned["lead_department"] == "OPS"
    assert assigned["cooperating_departments"] == ["LOG"]


async def test_override_without_reason_fails_the_gate(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _classified_event(client, desk, "business_issue", "system_failure")
    response = await _assign(client, desk, event["id"], lead_department="OPS")
    assert response.status_code == 409, response.text
    assert response.json()["missing"] == ["routing_override.reason"]


async def test_complaint_led_elsewhere_without_reason_lists_every_problem(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _classified_event(client, desk, "customer_complaint", "product_quality")
    response = await _assign(client, desk, event["id"], lead_department="SALES")
    assert response.status_code == 409, response.text
    assert response.json()["missing"] == [
        "routing_override.reason",
        "complaint.lead_customer_service",
    ]


async def test_override_with_reason_is_accepted_and_recorded(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _classified_event(
        client, desk, "business_issue", "system_failure", involved=["SALES"]
    )
    reason = "The failing system is run by operations"
    assigned = await _assigned(
        client, desk, event["id"], lead_department="OPS", override_reason=reason
    )
    assert assigned["lead_department"] == "OPS"
    assert assigned["cooperating_departments"] == ["SALES"]
    routing = assigned["routing"]
    assert routing["overridden"] is True
    assert routing["reason"] == reason
    assert routing["proposed_lead"] == "IT"
    assert routing["rule_id"] == "routing.business_issue.subcategory"

    timeline = await client.get(f"/v1/events/{event['id']}/timeline", headers=desk.headers)
    entries = [e for e in timeline.json()["items"] if e["action"] == "assign"]
    assert len(entries) == 1
    assert entries[0]["note"] == reason
    assert entries[0]["after"]["lead_department"] == "OPS"


async def test_lead_equal_to_the_policy_needs_no_reason(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _classified_event(client, desk, "emergency", "safety_accident")
    assigned = await _assigned(client, desk, event["id"], lead_department="SAF")
    assert assigned["lead_department"] == "SAF"
    assert assigned["routing"]["overridden"] is False


async def test_cooperating_departments_given_replace_the_proposal(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _classified_event(
        client, desk, "customer_complaint", "delivery_time", involved=["LOG"]
    )
    assigned = await _assigned(
        client, desk, event["id"], cooperating_departments=["LOG", "SALES", "CS"]
    )
    assert assigned["lead_department"] == "CS"
    assert assigned["cooperating_departments"] == ["LOG", "SALES"]


async def test_assignee_must_belong_to_the_lead_department(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor
) -> None:
    outsider = await make_actor(Role.HANDLER, department="SALES")
    event = await _classified_event(client, desk, "business_issue", "system_failure")
    response = await _assign(client, desk, event["id"], assignee_id=str(outsider.id))
    assert response.status_code == 409, response.text
    assert response.json()["missing"] == ["assignee.lead_department"]


async def test_assignee_of_the_lead_department_is_accepted(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor
) -> None:
    handler = await make_actor(Role.HANDLER, department="IT")
    event = await _classified_event(client, desk, "business_issue", "system_failure")
    assigned = await _assigned(client, desk, event["id"], assignee_id=str(handler.id))
    assert assigned["assignee_id"] == str(handler.id)
    assert assigned["routing"]["assignee_department"] == "IT"


async def test_unknown_assignee_is_rejected(client: httpx.AsyncClient, desk: Actor) -> None:
    event = await _classified_event(client, desk, "business_issue", "workflow")
    response = await _assign(
        client, desk, event["id"], assignee_id="01890000-0000-7000-8000-000000000000"
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lead_department": "NOPE", "override_reason": "Somebody else"}, "lead_department"),
        ({"cooperating_departments": ["IT", "NOPE"]}, "cooperating_departments"),
    ],
)
async def test_unknown_department_code_is_rejected(
    client: httpx.AsyncClient, desk: Actor, body: dict[str, Any], field: str
) -> None:
    event = await _classified_event(client, desk, "business_issue", "workflow")
    response = await _assign(client, desk, event["id"], **body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors == [{"field": field, "message": "unknown department code NOPE"}]
    got = await client.get(f"/v1/events/{event['id']}", headers=desk.headers)
    assert got.json()["status"] == "classified"


@pytest.mark.parametrize(
    "body",
    [
        {"lead_department": "it", "override_reason": "Lower case"},
        {"cooperating_departments": ["IT", "x-y"]},
        {"lead_department": "IT", "colour": "red"},
    ],
)
async def test_malformed_department_or_unknown_field_is_rejected(
    client: httpx.AsyncClient, desk: Actor, body: dict[str, Any]
) -> None:
    event = await _classified_event(client, desk, "business_issue", "workflow")
    response = await _assign(client, desk, event["id"], **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"]


@pytest.mark.parametrize(
    ("impact", "severity", "hours"),
    [
        ({"system_outage": "full"}, "major", 24),
        ({"system_outage": "partial"}, "important", 72),
        ({}, "general", 120),
    ],
)
async def test_resolve_by_follows_the_policy(
    client: httpx.AsyncClient,
    desk: Actor,
    impact: dict[str, Any],
    severity: str,
    hours: int,
) -> None:
    event = await _classified_event(client, desk, "business_issue", "system_failure", impact=impact)
    assert event["severity"] == severity
    assigned = await _assigned(client, desk, event["id"])
    assert _at(assigned["resolve_by"]) == _at(assigned["reported_at"]) + timedelta(hours=hours)
    assert _at(assigned["respond_by"]) == _at(assigned["reported_at"]) + timedelta(hours=8)


async def test_reassigning_before_the_plan_is_allowed(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor
) -> None:
    handler = await make_actor(Role.HANDLER, department="OPS")
    event = await _classified_event(client, desk, "business_issue", "system_failure")
    await _assigned(client, desk, event["id"])
    again = await _assigned(
        client,
        desk,
        event["id"],
        lead_department="OPS",
        assignee_id=str(handler.id),
        override_reason="IT is short-staffed this week",
    )
    assert again["status"] == "assigned"
    assert again["lead_department"] == "OPS"
    assert again["assignee_id"] == str(handler.id)


async def test_assigning_an_unclassified_event_is_refused(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    intake = await client.post("/v1/events", json=intake_body(), headers=desk.headers)
    response = await _assign(client, desk, intake.json()["id"])
    assert response.status_code == 409, response.text
    assert response.json()["allowed"] == ["classify", "cancel", "add_note"]


async def test_supervisor_may_assign(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor
) -> None:
    supervisor = await make_actor(Role.SUPERVISOR, department="SUP")
    event = await _classified_event(client, desk, "emergency", "public_health")
    assigned = await _assigned(client, supervisor, event["id"])
    assert assigned["lead_department"] == "HR"


@pytest.mark.parametrize("role", [Role.REPORTER, Role.HANDLER, Role.DEPT_HEAD, Role.INTEGRATION])
async def test_roles_that_may_not_assign(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor, role: Role
) -> None:
    actor = await make_actor(role, department="IT")
    # They reported it themselves, so they can see it: the answer is 403, not 404.
    event = await _classified_event(client, desk, "business_issue", "workflow", reporter=actor)
    response = await _assign(client, actor, event["id"])
    assert response.status_code == 403, response.text
    got = await client.get(f"/v1/events/{event['id']}", headers=desk.headers)
    assert got.json()["status"] == "classified"


@pytest.mark.parametrize("role", [Role.HANDLER, Role.DEPT_HEAD])
async def test_lead_department_staff_may_not_reassign(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor, role: Role
) -> None:
    staff = await make_actor(role, department="IT")
    event = await _classified_event(client, desk, "business_issue", "system_failure")
    await _assigned(client, desk, event["id"])
    response = await _assign(
        client, staff, event["id"], lead_department="OPS", override_reason="Not ours"
    )
    assert response.status_code == 403, response.text


async def test_event_the_caller_may_not_see_is_not_found(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor
) -> None:
    handler = await make_actor(Role.HANDLER, department="HR")
    event = await _classified_event(client, desk, "business_issue", "system_failure")
    response = await _assign(client, handler, event["id"])
    assert response.status_code == 404, response.text
    missing = await _assign(client, desk, "EV-1999-999999")
    assert missing.status_code == 404, missing.text
