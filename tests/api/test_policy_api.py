"""The policy API on real PostgreSQL: versioned documents and evaluation (product.md section 3)."""

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.models import Event
from app.outbox.models import OutboxMessage
from app.policy.document import DEFAULT_POLICY_DOCUMENT
from app.policy.models import PolicyVersion
from app.rules.vocabulary import Role
from tests.conftest import Actor, MakeActor, intake_body


def _default_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(DEFAULT_POLICY_DOCUMENT))
    return document


def _with_customers_threshold(threshold: int) -> dict[str, Any]:
    document = _default_document()
    for rule in document["grading"]["important"]:
        if rule["id"] == "important.customers_affected":
            rule["value"] = threshold
    return document


async def _put(client: httpx.AsyncClient, actor: Actor, document: dict[str, Any]) -> httpx.Response:
    return await client.put(
        "/v1/policy", json={"document": document, "note": "test"}, headers=actor.headers
    )


async def _count(session_maker: async_sessionmaker[AsyncSession], model: type[Any]) -> int:
    async with session_maker() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


async def test_default_policy_is_version_one(client: httpx.AsyncClient, reporter: Actor) -> None:
    response = await client.get("/v1/policy", headers=reporter.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 1
    assert body["document"] == _default_document()
    routing = body["document"]["routing"]
    assert routing["business_issue"]["by_subcategory"]["system_failure"] == "IT"
    assert routing["customer_complaint"]["lead"] == "CS"
    assert routing["emergency"]["by_subcategory"]["safety_accident"] == "SAF"


async def test_policy_needs_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/policy")
    assert response.status_code == 401, response.text


async def test_admin_put_creates_a_new_version_and_keeps_the_old(
    client: httpx.AsyncClient, admin: Actor, desk: Actor
) -> None:
    document = _with_customers_threshold(5)
    response = await _put(client, admin, document)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] == 2
    assert body["note"] == "test"
    assert body["document"] == document

    current = await client.get("/v1/policy", headers=desk.headers)
    assert current.json()["version"] == 2
    assert current.json()["document"] == document

    old = await client.get("/v1/policy/versions/1", headers=desk.headers)
    assert old.status_code == 200, old.text
    assert old.json()["version"] == 1
    assert old.json()["document"] == _default_document()

    again = await _put(client, admin, _default_document())
    assert again.json()["version"] == 3


async def test_unknown_version_is_not_found(client: httpx.AsyncClient, desk: Actor) -> None:
    response = await client.get("/v1/policy/versions/99", headers=desk.headers)
    assert response.status_code == 404, response.text
    zero = await client.get("/v1/policy/versions/0", headers=desk.headers)
    assert zero.status_code == 422, zero.text


@pytest.mark.parametrize(
    "roles",
    [
        (Role.REPORTER,),
        (Role.INTAKE_AGENT,),
        (Role.HANDLER,),
        (Role.DEPT_HEAD,),
        (Role.SUPERVISOR,),
        (Role.INTEGRATION,),
    ],
)
async def test_only_admin_may_put(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
    roles: tuple[Role, ...],
) -> None:
    actor = await make_actor(*roles, department="CS")
    response = await _put(client, actor, _with_customers_threshold(5))
    assert response.status_code == 403, response.text
    assert await _count(session_maker, PolicyVersion) == 1


async def test_invalid_document_lists_every_problem(
    client: httpx.AsyncClient, admin: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    document = _default_document()
    document["routing"]["business_issue"]["by_subcategory"]["system_failure"] = "NOPE"
    document["intake_department"] = "DESK"
    for rule in document["grading"]["important"]:
        if rule["id"] == "important.financial_loss":
            rule["value"] = -1
    document["taxonomy"]["weather"] = ["storm"]
    document["deadlines"]["resolve_hours"]["major"] = -24

    response = await _put(client, admin, document)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("policy-invalid")
    fields = {error["field"]: error["message"] for error in problem["errors"]}
    assert "unknown department" in fields["routing.business_issue.by_subcategory.system_failure"]
    assert "unknown department" in fields["intake_department"]
    assert "negative" in fields["grading.important[3].value"]
    assert fields["taxonomy.weather"] == "unknown key"
    assert "greater than 0" in fields["deadlines.resolve_hours.major"]
    assert len(problem["errors"]) == 5
    assert await _count(session_maker, PolicyVersion) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["grading"]["major"][0].update(fact="weather"), "grading.major[0].fact"),
        (lambda d: d["grading"]["major"][0].update(op="lt"), "grading.major[0].op"),
        (lambda d: d["routing"]["emergency"]["by_subcategory"].pop("public_health"), None),
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d.pop("deadlines"), "deadlines"),
        (lambda d: d["gates"].update(satisfaction_attempts=0), "gates.satisfaction_attempts"),
        (lambda d: d["routing"].update(weather={"lead": "IT"}), "routing.weather"),
    ],
)
async def test_invalid_documents_are_rejected(
    client: httpx.AsyncClient, admin: Actor, change: Any, field: str | None
) -> None:
    document = _default_document()
    change(document)
    response = await _put(client, admin, document)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert errors
    if field is not None:
        assert field in {error["field"] for error in errors}


async def test_put_body_rejects_unknown_fields(client: httpx.AsyncClient, admin: Actor) -> None:
    response = await client.put(
        "/v1/policy",
        json={"document": _default_document(), "version": 7},
        headers=admin.headers,
    )
    assert response.status_code == 422, response.text


async def test_threshold_change_keeps_old_gradings_and_applies_to_new_ones(
    client: httpx.AsyncClient, admin: Actor, desk: Actor
) -> None:
    classification = {
        "category": "customer_complaint",
        "subcategory": "delivery_time",
        "impact": {"customers_affected": 5},
    }
    before = await client.post("/v1/events", json=intake_body(), headers=desk.headers)
    old = await client.post(
        f"/v1/events/{before.json()['id']}/classification",
        json=classification,
        headers=desk.headers,
    )
    assert old.status_code == 200, old.text
    assert old.json()["severity"] == "general"
    assert old.json()["grading"]["policy_version"] == 1

    put = await _put(client, admin, _with_customers_threshold(5))
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 2

    after = await client.post("/v1/events", json=intake_body(), headers=desk.headers)
    new = await client.post(
        f"/v1/events/{after.json()['id']}/classification", json=classification, headers=desk.headers
    )
    assert new.status_code == 200, new.text
    assert new.json()["severity"] == "important"
    assert new.json()["grading"]["rule_ids"] == ["important.customers_affected"]
    assert new.json()["grading"]["policy_version"] == 2

    kept = await client.get(f"/v1/events/{before.json()['id']}", headers=desk.headers)
    assert kept.json()["severity"] == "general"
    assert kept.json()["grading"] == old.json()["grading"]


async def test_evaluate_full_outage_is_major_and_routed_to_it(
    client: httpx.AsyncClient, desk: Actor, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    events, messages = (
        await _count(session_maker, Event),
        await _count(session_maker, OutboxMessage),
    )
    reported_at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    response = await client.post(
        "/v1/policy/evaluate",
        json={
            "category": "business_issue",
            "subcategory": "system_failure",
            "impact": {"system_outage": "full"},
            "involved_departments": ["SALES"],
            "reported_at": reported_at.isoformat(),
        },
        headers=desk.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["severity"] == "major"
    assert body["policy_version"] == 1
    assert body["grading"]["rule_ids"] == ["major.full_outage"]
    assert body["routing"]["lead_department"] == "IT"
    assert body["routing"]["cooperating_departments"] == ["SALES"]
    assert body["routing"]["rule_id"] == "routing.business_issue.subcategory"
    assert datetime.fromisoformat(body["deadlines"]["respond_by"]) == reported_at + timedelta(
        hours=8
    )
    assert datetime.fromisoformat(body["deadlines"]["resolve_by"]) == reported_at + timedelta(
        hours=24
    )
    assert await _count(session_maker, Event) == events
    assert await _count(session_maker, OutboxMessage) == messages


async def test_evaluate_urgent_complaint(client: httpx.AsyncClient, reporter: Actor) -> None:
    reported_at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    response = await client.post(
        "/v1/policy/evaluate",
        json={
            "category": "customer_complaint",
            "subcategory": "service_attitude",
            "urgent": True,
            "involved_departments": ["SALES"],
            "reported_at": reported_at.isoformat(),
        },
        headers=reporter.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["severity"] == "important"
    assert body["grading"]["rule_ids"] == ["important.urgent"]
    assert body["routing"]["lead_department"] == "CS"
    assert body["routing"]["cooperating_departments"] == ["SALES"]
    assert datetime.fromisoformat(body["deadlines"]["respond_by"]) == reported_at + timedelta(
        minutes=30
    )
    assert datetime.fromisoformat(body["deadlines"]["resolve_by"]) == reported_at + timedelta(
        hours=72
    )


async def test_evaluate_uses_the_policy_in_force(
    client: httpx.AsyncClient, admin: Actor, desk: Actor
) -> None:
    request = {
        "category": "business_issue",
        "subcategory": "workflow",
        "impact": {"customers_affected": 5},
    }
    first = await client.post("/v1/policy/evaluate", json=request, headers=desk.headers)
    assert first.json()["severity"] == "general"
    assert (await _put(client, admin, _with_customers_threshold(5))).status_code == 200
    second = await client.post("/v1/policy/evaluate", json=request, headers=desk.headers)
    assert second.json()["severity"] == "important"
    assert second.json()["policy_version"] == 2


@pytest.mark.parametrize(
    "request_body",
    [
        {"category": "business_issue", "subcategory": "product_quality"},
        {"category": "weather", "subcategory": "other"},
        {"category": "business_issue", "subcategory": "workflow", "colour": "red"},
        {"category": "business_issue", "subcategory": "workflow", "involved_departments": ["x"]},
        {"category": "business_issue", "subcategory": "workflow", "involved_departments": ["NOPE"]},
    ],
)
async def test_evaluate_rejects_invalid_requests(
    client: httpx.AsyncClient, desk: Actor, request_body: dict[str, Any]
) -> None:
    response = await client.post("/v1/policy/evaluate", json=request_body, headers=desk.headers)
    assert response.status_code == 422, response.text


async def test_put_document_is_stored_normalised(client: httpx.AsyncClient, admin: Actor) -> None:
    document = copy.deepcopy(_default_document())
    response = await _put(client, admin, document)
    assert response.status_code == 200, response.text
    assert response.json()["document"] == document


async def test_evaluate_previews_what_the_assignment_would_miss(
    client: httpx.AsyncClient, desk: Actor
) -> None:
    body = {"category": "internal_coordination", "subcategory": "communication"}
    alone = await client.post(
        "/v1/policy/evaluate", json={**body, "involved_departments": ["OPS"]}, headers=desk.headers
    )
    assert alone.status_code == 200
    assert alone.json()["assignment_missing"] == ["coordination.departments"]
    pair = await client.post(
        "/v1/policy/evaluate",
        json={**body, "involved_departments": ["OPS", "LOG"]},
        headers=desk.headers,
    )
    assert pair.json()["assignment_missing"] == []
    assert pair.json()["routing"]["lead_department"] == "OPS"
