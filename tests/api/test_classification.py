"""Classification on real PostgreSQL (R2, R3.1.3, R3.2.1-2; product.md sections 2, 3 and 7)."""

from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.outbox.models import OutboxMessage
from app.rules.vocabulary import Role
from tests.api.flow import at as _at
from tests.api.flow import classified as _classified
from tests.api.flow import post_classification as _classify
from tests.api.flow import report as _intake
from tests.conftest import Actor, MakeActor


@pytest.mark.parametrize(
    ("category", "subcategory", "impact", "severity", "rule_ids"),
    [
        (
            "business_issue",
            "system_failure",
            {"system_outage": "full"},
            "major",
            ["major.full_outage"],
        ),
        ("business_issue", "workflow", {}, "general", []),
        (
            "business_issue",
            "data_error",
            {"system_outage": "partial", "financial_loss": 20000},
            "important",
            ["important.partial_outage", "important.financial_loss"],
        ),
        (
            "customer_complaint",
            "product_quality",
            {"key_account": True},
            "major",
            ["major.key_account_complaint"],
        ),
        (
            "customer_complaint",
            "delivery_time",
            {"customers_affected": 10},
            "important",
            ["important.customers_affected"],
        ),
        ("customer_complaint", "service_attitude", {}, "general", []),
        (
            "internal_coordination",
            "communication",
            {"departments_needed": 2},
            "important",
            ["important.departments_needed"],
        ),
        ("internal_coordination", "task_allocation", {}, "general", []),
        (
            "internal_coordination",
            "other",
            {"scope": "company"},
            "major",
            ["major.company_scope"],
        ),
        ("emergency", "natural_disaster", {}, "important", ["important.emergency"]),
        (
            "emergency",
            "safety_accident",
            {"safety": "injury"},
            "major",
            ["major.safety_injury"],
        ),
        (
            "emergency",
            "public_health",
            {"reputation_risk": True},
            "major",
            ["major.reputation_risk"],
        ),
    ],
)
async def test_each_category_graded_by_the_default_policy(
    client: httpx.AsyncClient,
    desk: Actor,
    category: str,
    subcategory: str,
    impact: dict[str, Any],
    severity: str,
    rule_ids: list[str],
) -> None:
    event = await _intake(client, desk)
    classified = await _classified(
        client, desk, event["id"], category=category, subcategory=subcategory, impact=impact
    )
    assert classified["status"] == "classified"
    assert classified["category"] == category
    assert classified["subcategory"] == subcategory
    assert classified["severity"] == severity
    grading = classified["grading"]
    assert grading["rule_ids"] == rule_ids
    assert grading["policy_version"] == 1
    assert grading["overridden"] is False
    assert grading["reason"] is None
    assert grading["rules_severity"] == severity
    assert classified["version"] == event["version"] + 1


async def test_key_account_is_major_only_for_complaints(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _intake(client, desk)
    classified = await _classified(
        client,
        desk,
        event["id"],
        category="business_issue",
        subcategory="workflow",
        impact={"key_account": True},
    )
    assert classified["severity"] == "general"
    assert classified["grading"]["rule_ids"] == []


async def test_classification_is_read_back(client: httpx.AsyncClient, desk: Actor) -> None:
    event = await _intake(client, desk)
    await _classified(
        client,
        desk,
        event["id"],
        category="customer_complaint",
        subcategory="other",
        impact={"customers_affected": 150},
    )
    got = await client.get(f"/v1/events/{event['ref']}", headers=desk.headers)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["severity"] == "major"
    assert body["grading"]["rule_ids"] == ["major.customers_affected"]
    assert body["impact"]["customers_affected"] == 150


@pytest.mark.parametrize(
    ("category", "subcategory"),
    [
        ("business_issue", "product_quality"),
        ("customer_complaint", "system_failure"),
        ("internal_coordination", "natural_disaster"),
        ("emergency", "communication"),
        ("emergency", "no_such_thing"),
    ],
)
async def test_subcategory_outside_its_category_is_rejected(
    client: httpx.AsyncClient, desk: Actor, category: str, subcategory: str
) -> None:
    event = await _intake(client, desk)
    response = await _classify(
        client, desk, event["id"], category=category, subcategory=subcategory
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any(error["field"] == "subcategory" for error in response.json()["errors"])
    got = await client.get(f"/v1/events/{event['id']}", headers=desk.headers)
    assert got.json()["status"] == "reported"


async def test_unknown_category_is_rejected(client: httpx.AsyncClient, desk: Actor) -> None:
    event = await _intake(client, desk)
    response = await _classify(client, desk, event["id"], category="weather", subcategory="other")
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"category": "business_issue", "subcategory": "workflow", "colour": "red"},
        {"category": "business_issue", "subcategory": "workflow", "impact": {"mood": "bad"}},
        {
            "category": "business_issue",
            "subcategory": "workflow",
            "severity_override": {"severity": "major", "reason": "x", "by": "me"},
        },
    ],
)
async def test_unknown_fields_are_rejected(
    client: httpx.AsyncClient, desk: Actor, body: dict[str, Any]
) -> None:
    event = await _intake(client, desk)
    response = await client.post(
        f"/v1/events/{event['id']}/classification", json=body, headers=desk.headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"]


async def test_override_without_reason_fails_the_gate(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _intake(client, desk)
    response = await _classify(
        client,
        desk,
        event["id"],
        category="business_issue",
        subcategory="workflow",
        severity_override={"severity": "major"},
    )
    assert response.status_code == 409, response.text
    assert response.json()["missing"] == ["severity_override.reason"]


async def test_override_with_reason_is_kept_beside_the_rules(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _intake(client, desk)
    reason = "The CFO's laptop is affected; treat as major"
    classified = await _classified(
        client,
        desk,
        event["id"],
        category="business_issue",
        subcategory="system_failure",
        impact={"system_outage": "partial"},
        severity_override={"severity": "major", "reason": reason},
    )
    assert classified["severity"] == "major"
    grading = classified["grading"]
    assert grading["overridden"] is True
    assert grading["reason"] == reason
    assert grading["rules_severity"] == "important"
    assert grading["rule_ids"] == ["important.partial_outage"]
    assert grading["policy_version"] == 1

    timeline = await client.get(f"/v1/events/{event['id']}/timeline", headers=desk.headers)
    assert timeline.status_code == 200, timeline.text
    entries = [e for e in timeline.json()["items"] if e["action"] == "classify"]
    assert len(entries) == 1
    assert entries[0]["note"] == reason
    assert entries[0]["actor_id"] == str(desk.id)
    assert entries[0]["after"]["severity"] == "major"
    assert entries[0]["after"]["grading"]["reason"] == reason
    assert timeline.json()["chain_valid"] is True


async def test_override_equal_to_the_rules_is_not_an_override(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _intake(client, desk)
    classified = await _classified(
        client,
        desk,
        event["id"],
        category="business_issue",
        subcategory="workflow",
        severity_override={"severity": "general", "reason": "Agrees with the rules"},
    )
    assert classified["severity"] == "general"
    assert classified["grading"]["overridden"] is False
    assert classified["grading"]["reason"] is None


async def test_override_may_lower_a_grade_with_a_reason(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _intake(client, desk)
    classified = await _classified(
        client,
        desk,
        event["id"],
        category="customer_complaint",
        subcategory="delivery_time",
        impact={"customers_affected": 120},
        severity_override={"severity": "important", "reason": "Duplicates counted twice"},
    )
    assert classified["severity"] == "important"
    assert classified["grading"]["rules_severity"] == "major"
    assert classified["grading"]["overridden"] is True


async def test_reclassifying_a_classified_event_changes_the_grade(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _intake(client, desk)
    first = await _classified(
        client, desk, event["id"], category="business_issue", subcategory="workflow"
    )
    assert first["severity"] == "general"
    second = await _classified(
        client,
        desk,
        event["id"],
        category="business_issue",
        subcategory="system_failure",
        impact={"system_outage": "full"},
    )
    assert second["status"] == "classified"
    assert second["severity"] == "major"
    assert second["subcategory"] == "system_failure"
    assert second["grading"]["rule_ids"] == ["major.full_outage"]
    assert second["version"] == first["version"] + 1

    timeline = await client.get(f"/v1/events/{event['id']}/timeline", headers=desk.headers)
    entries = [e for e in timeline.json()["items"] if e["action"] == "classify"]
    assert [e["after"]["severity"] for e in entries] == ["general", "major"]
    assert entries[1]["before"]["severity"] == "general"


async def test_reclassifying_an_assigned_event_keeps_it_assigned_and_moves_resolve_by(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _intake(client, desk)
    await _classified(client, desk, event["id"], category="business_issue", subcategory="workflow")
    assigned = await client.post(
        f"/v1/events/{event['id']}/assignment", json={}, headers=desk.headers
    )
    assert assigned.status_code == 200, assigned.text
    reported_at = _at(assigned.json()["reported_at"])
    assert _at(assigned.json()["resolve_by"]) == reported_at + timedelta(hours=120)

    reason = "Whole warehouse blocked"
    regraded = await _classified(
        client,
        desk,
        event["id"],
        category="business_issue",
        subcategory="workflow",
        severity_override={"severity": "major", "reason": reason},
    )
    assert regraded["status"] == "assigned"
    assert regraded["severity"] == "major"
    assert regraded["lead_department"] == "OPS"
    assert _at(regraded["resolve_by"]) == reported_at + timedelta(hours=24)

    timeline = await client.get(f"/v1/events/{event['id']}/timeline", headers=desk.headers)
    last = [e for e in timeline.json()["items"] if e["action"] == "classify"][-1]
    assert last["note"] == reason
    assert last["before"]["severity"] == "general"
    assert last["after"]["severity"] == "major"


async def test_reclassifying_after_the_plan_is_refused(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor
) -> None:
    handler = await make_actor(Role.HANDLER, department="OPS")
    event = await _intake(client, desk)
    await _classified(client, desk, event["id"], category="business_issue", subcategory="workflow")
    assigned = await client.post(
        f"/v1/events/{event['id']}/assignment",
        json={"assignee_id": str(handler.id)},
        headers=desk.headers,
    )
    assert assigned.status_code == 200, assigned.text
    due = (_at(assigned.json()["reported_at"]) + timedelta(days=1)).isoformat()
    plan = await client.put(
        f"/v1/events/{event['id']}/plan",
        json={"steps": [{"title": "Fix the workflow", "owner_id": str(handler.id), "due_at": due}]},
        headers=handler.headers,
    )
    assert plan.status_code == 200, plan.text
    assert plan.json()["status"] == "in_progress"

    response = await _classify(
        client, desk, event["id"], category="business_issue", subcategory="data_error"
    )
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"].endswith("transition-not-allowed")
    assert "classify" not in problem["allowed"]
    assert "resolve" in problem["allowed"]
    got = await client.get(f"/v1/events/{event['id']}", headers=desk.headers)
    assert got.json()["subcategory"] == "workflow"


async def test_supervisor_may_classify(client: httpx.AsyncClient, make_actor: MakeActor) -> None:
    supervisor = await make_actor(Role.SUPERVISOR, department="SUP")
    event = await _intake(client, supervisor)
    classified = await _classified(
        client, supervisor, event["id"], category="emergency", subcategory="other"
    )
    assert classified["severity"] == "important"


@pytest.mark.parametrize("role", [Role.REPORTER, Role.HANDLER, Role.DEPT_HEAD, Role.INTEGRATION])
async def test_roles_that_may_not_classify(
    client: httpx.AsyncClient, make_actor: MakeActor, role: Role
) -> None:
    actor = await make_actor(role, department="OPS")
    # They reported it themselves, so they can see it: the answer is 403, not 404.
    event = await _intake(client, actor)
    seen = await client.get(f"/v1/events/{event['id']}", headers=actor.headers)
    assert seen.status_code == 200, seen.text
    response = await _classify(
        client, actor, event["id"], category="business_issue", subcategory="workflow"
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_event_the_caller_may_not_see_is_not_found(
    client: httpx.AsyncClient, desk: Actor, make_actor: MakeActor
) -> None:
    stranger = await make_actor(Role.REPORTER, department="HR")
    event = await _intake(client, desk)
    response = await _classify(
        client, stranger, event["id"], category="business_issue", subcategory="workflow"
    )
    assert response.status_code == 404, response.text


# --- urgent events (R3.1.3) ------------------------------------------------------------------


async def test_urgent_event_responds_within_thirty_minutes(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    urgent = await _intake(client, desk, urgent=True)
    normal = await _intake(client, desk)
    assert _at(urgent["respond_by"]) == _at(urgent["reported_at"]) + timedelta(minutes=30)
    assert _at(normal["respond_by"]) == _at(normal["reported_at"]) + timedelta(hours=8)


async def test_urgent_event_writes_an_outbox_message_with_the_event(
    client: httpx.AsyncClient,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    urgent = await _intake(client, desk, urgent=True)
    normal = await _intake(client, desk)
    async with session_maker() as session:
        rows = (
            await session.execute(
                sa.select(OutboxMessage.event_id, OutboxMessage.payload, OutboxMessage.created_at)
                .where(OutboxMessage.type == "event.urgent")
                .where(OutboxMessage.event_id.in_([urgent["id"], normal["id"]]))
            )
        ).all()
    assert len(rows) == 1
    assert str(rows[0].event_id) == urgent["id"]
    assert rows[0].payload["type"] == "event.urgent"
    assert rows[0].payload["data"]["id"] == urgent["id"]
    assert _at(rows[0].payload["data"]["respond_by"]) == _at(urgent["respond_by"])
    # Written by the intake itself, at the same instant as the event.
    assert rows[0].created_at == _at(urgent["reported_at"])


@pytest.mark.parametrize(
    ("category", "subcategory"),
    [
        ("business_issue", "workflow"),
        ("customer_complaint", "service_attitude"),
        ("internal_coordination", "communication"),
    ],
)
async def test_urgent_event_is_at_least_important(
    client: httpx.AsyncClient, desk: Actor, category: str, subcategory: str
) -> None:
    event = await _intake(client, desk, urgent=True)
    classified = await _classified(
        client, desk, event["id"], category=category, subcategory=subcategory
    )
    assert classified["severity"] == "important"
    assert classified["grading"]["rule_ids"] == ["important.urgent"]


async def test_urgent_event_cannot_be_overridden_to_general(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    event = await _intake(client, desk, urgent=True)
    response = await _classify(
        client,
        desk,
        event["id"],
        category="business_issue",
        subcategory="workflow",
        severity_override={"severity": "general", "reason": "Not really urgent"},
    )
    assert response.status_code == 409, response.text
    assert response.json()["missing"] == ["severity_override.urgent_floor"]
    got = await client.get(f"/v1/events/{event['id']}", headers=desk.headers)
    assert got.json()["status"] == "reported"
    assert got.json()["severity"] is None


async def test_urgent_event_may_be_raised_to_major(client: httpx.AsyncClient, desk: Actor) -> None:
    event = await _intake(client, desk, urgent=True)
    classified = await _classified(
        client,
        desk,
        event["id"],
        category="emergency",
        subcategory="safety_accident",
        severity_override={"severity": "major", "reason": "Fire on the loading dock"},
    )
    assert classified["severity"] == "major"
    assert classified["grading"]["rules_severity"] == "important"
    assert classified["grading"]["rule_ids"] == ["important.emergency", "important.urgent"]


async def test_reclassifying_an_assigned_event_into_another_category_needs_a_new_assignment(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    """R3.2.3: an IT-led business issue re-classified as a complaint no longer fits (CS leads)."""
    event = await _intake(client, desk)
    classified = await _classify(
        client, desk, event["id"], category="business_issue", subcategory="system_failure"
    )
    assert classified.status_code == 200
    assigned = await client.post(
        f"/v1/events/{event['id']}/assignment", json={}, headers=desk.headers
    )
    assert assigned.json()["lead_department"] == "IT"
    again = await _classify(
        client, desk, event["id"], category="customer_complaint", subcategory="product_quality"
    )
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "classified"
    assert again.json()["lead_department"] is None
    reassigned = await client.post(
        f"/v1/events/{event['id']}/assignment", json={}, headers=desk.headers
    )
    assert reassigned.json()["lead_department"] == "CS"
    assert reassigned.json()["status"] == "assigned"


async def test_reclassifying_into_a_category_routed_elsewhere_needs_a_new_assignment(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    """A system failure led by IT, re-classified as a safety accident (SAF by the plan)."""
    event = await _intake(client, desk)
    await _classify(
        client, desk, event["id"], category="business_issue", subcategory="system_failure"
    )
    await client.post(f"/v1/events/{event['id']}/assignment", json={}, headers=desk.headers)
    again = await _classify(
        client, desk, event["id"], category="emergency", subcategory="safety_accident"
    )
    assert again.json()["status"] == "classified"
    reassigned = await client.post(
        f"/v1/events/{event['id']}/assignment", json={}, headers=desk.headers
    )
    assert reassigned.json()["lead_department"] == "SAF"
    # Re-grading within the same routing keeps the assignment.
    same = await _classify(
        client,
        desk,
        event["id"],
        category="emergency",
        subcategory="safety_accident",
        impact={"safety": "injury"},
    )
    assert same.json()["status"] == "assigned"
    assert same.json()["severity"] == "major"


async def test_the_impact_reads_back_as_it_was_sent(client: httpx.AsyncClient, desk: Actor) -> None:
    """R3.2.1: the financial loss is a JSON number both ways, so what a client sent it can send
    again (a string is refused on the way in: tests/api/test_input_strictness.py)."""
    event = await _intake(client, desk)
    impact = {"financial_loss": 12345.67, "customers_affected": 3}
    classified = await _classified(
        client,
        desk,
        event["id"],
        category="business_issue",
        subcategory="data_error",
        impact=impact,
    )
    assert classified["impact"]["financial_loss"] == 12345.67
    assert classified["impact"]["customers_affected"] == 3
    read = await client.get(f"/v1/events/{event['id']}", headers=desk.headers)
    assert read.json()["impact"]["financial_loss"] == 12345.67
