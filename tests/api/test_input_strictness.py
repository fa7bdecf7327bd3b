"""Request bodies are taken as JSON sent them (issue 10 item 12): no control characters in
text, no coercion between JSON types, no key twice, JSON only (415 otherwise), null exactly
where the schema allows it, internationalised e-mail addresses, no `occurred_at` from the
future. Each through HTTP, on the real app."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.rules.vocabulary import Role
from tests.conftest import Actor, MakeActor, intake_body

# Body validation answers before the event is looked up: any id will do.
EVENT = "/v1/events/0190c7a2-0000-7000-8000-000000000001"


def _fields(response: httpx.Response) -> list[str]:
    return [error["field"] for error in response.json().get("errors", [])]


# ---- control characters -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": "Bell \x07 in the title"}, "body.title"),
        ({"description": "ANSI \x1b[31mred\x1b[0m"}, "body.description"),
        ({"description": "backspace \b and form feed \f"}, "body.description"),
        ({"title": "delete \x7f"}, "body.title"),
        ({"title": "C1 next line \x85"}, "body.title"),
        ({"reporter": {"name": "Ana\x01"}}, "body.reporter.name"),
        ({"involved_people": ["Bob", "Eve\x1b"]}, "body.involved_people.1"),
    ],
)
async def test_control_characters_in_text_are_refused(
    client: httpx.AsyncClient, reporter: Actor, overrides: dict[str, Any], field: str
) -> None:
    """Issue 10 item 12: a control character (not tab, line feed, carriage return) in any
    text field is a 422 naming the field."""
    body = intake_body(**overrides)
    response = await client.post("/v1/events", json=body, headers=reporter.headers)
    assert response.status_code == 422, response.text
    assert _fields(response) == [field]
    assert "Control characters" in response.json()["detail"]


async def test_tab_newline_and_carriage_return_are_text(
    client: httpx.AsyncClient, reporter: Actor, admin: Actor
) -> None:
    """Issue 10 item 12: the three whitespace controls stay allowed, and so does non-ASCII
    text (no false positives on printable Unicode)."""
    body = intake_body(description="Line one\r\nline two\twith a tab; Grüße, 你好, emoji 🙂")
    created = await client.post("/v1/events", json=body, headers=reporter.headers)
    assert created.status_code == 201, created.text
    assert created.json()["description"] == body["description"]
    user = await client.post(
        "/v1/users", json={"name": "Bad\x1bName", "roles": ["handler"]}, headers=admin.headers
    )
    assert user.status_code == 422
    assert _fields(user) == ["body.name"]


# ---- no coercion between JSON types ---------------------------------------------------------


COERCIONS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/v1/events", intake_body(urgent="yes"), "body.urgent"),
    ("POST", "/v1/events", intake_body(urgent="true"), "body.urgent"),
    ("POST", "/v1/events", intake_body(urgent=1), "body.urgent"),
    ("POST", "/v1/events", intake_body(occurred_at=1_700_000_000), "body.occurred_at"),
    (
        "POST",
        f"{EVENT}/classification",
        {
            "category": "business_issue",
            "subcategory": "workflow",
            "impact": {"customers_affected": "40"},
        },
        "body.impact.customers_affected",
    ),
    (
        "POST",
        f"{EVENT}/classification",
        {
            "category": "business_issue",
            "subcategory": "workflow",
            "impact": {"financial_loss": "20000"},
        },
        "body.impact.financial_loss",
    ),
    (
        "POST",
        f"{EVENT}/classification",
        {"category": "business_issue", "subcategory": "workflow", "impact": {"key_account": 0}},
        "body.impact.key_account",
    ),
    ("POST", f"{EVENT}/satisfaction", {"score": "5"}, "body.score"),
    ("POST", f"{EVENT}/satisfaction", {"score": 5.0}, "body.score"),
    ("POST", f"{EVENT}/satisfaction", {"score": True}, "body.score"),
    ("POST", f"{EVENT}/satisfaction", {"unreachable": "yes", "attempts": 3}, "body.unreachable"),
    ("POST", f"{EVENT}/satisfaction", {"unreachable": True, "attempts": "3"}, "body.attempts"),
    (
        "POST",
        f"{EVENT}/actions/0190c7a2-0000-7000-8000-000000000002/verification",
        {"effective": "true", "note": "checked"},
        "body.effective",
    ),
    (
        "POST",
        "/v1/policy/evaluate",
        {"category": "business_issue", "subcategory": "workflow", "urgent": "no"},
        "body.urgent",
    ),
    ("PATCH", "/v1/departments/IT", {"active": "false"}, "body.active"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    COERCIONS,
    ids=[f"{field}-{i}" for i, (_, _, _, field) in enumerate(COERCIONS)],
)
async def test_scalars_must_have_their_json_type(
    client: httpx.AsyncClient, admin: Actor, method: str, path: str, body: Any, field: str
) -> None:
    """Issue 10 item 12: `"urgent": "yes"` and friends are refused, for every boolean, integer,
    number and time field: no string, number or boolean stands for another type."""
    response = await client.request(method, path, json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/validation-error")
    assert _fields(response) == [field]


async def test_user_active_must_be_a_boolean(
    client: httpx.AsyncClient, admin: Actor, make_actor: MakeActor
) -> None:
    """Issue 10 item 12: `"active": "false"` would have deactivated nobody's idea of false."""
    handler = await make_actor(Role.HANDLER, department="IT")
    response = await client.patch(
        f"/v1/users/{handler.id}", json={"active": "false"}, headers=admin.headers
    )
    assert response.status_code == 422
    assert _fields(response) == ["body.active"]
    assert (await client.get("/v1/me", headers=handler.headers)).status_code == 200


# ---- duplicate keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (
            b'{"title": "A", "description": "B", "channel": "email", "urgent": false,'
            b' "reporter": {"name": "Ana"}, "urgent": true}',
            "urgent",
        ),
        (
            b'{"title": "A", "description": "B", "channel": "email",'
            b' "reporter": {"name": "Ana", "email": "a@example.com", "name": "Eve"}}',
            "name",
        ),
        (  # the same key spelt with an escape
            b'{"title": "A", "\\u0074itle": "B", "description": "B", "channel": "email",'
            b' "reporter": {"name": "Ana"}}',
            "title",
        ),
    ],
)
async def test_duplicate_json_keys_are_refused(
    client: httpx.AsyncClient, reporter: Actor, raw: bytes, key: str
) -> None:
    """Issue 10 item 12 (RFC 7493 section 2.3): a key twice in one object is a 400
    `malformed-json` naming it, not silently the last value."""
    response = await client.post(
        "/v1/events", content=raw, headers={**reporter.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/malformed-json")
    assert repr(key) in response.json()["detail"]


async def test_same_key_in_sibling_objects_is_fine(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    """Issue 10 item 12: only a key repeated within one object is refused."""
    body = intake_body(
        external_ref={"system": "crm", "id": "T-1"}, reporter={"name": "Ana", "external_id": "1"}
    )
    response = await client.post("/v1/events", json=body, headers=reporter.headers)
    assert response.status_code == 201, response.text


# ---- JSON only --------------------------------------------------------------------------------


NOT_JSON = [
    ("text/plain", b'{"name": "Quality", "code": "QA"}'),
    ("application/x-www-form-urlencoded", b"code=QA&name=Quality"),
    ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="code"'),
    ("application/xml", b"<department code='QA'/>"),
    (None, b'{"name": "Quality", "code": "QA"}'),
]


@pytest.mark.parametrize(("content_type", "raw"), NOT_JSON, ids=[str(c) for c, _ in NOT_JSON])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/departments"),
        ("PATCH", "/v1/departments/IT"),
        ("POST", "/v1/events"),
        ("PUT", f"{EVENT}/plan"),
        ("POST", f"{EVENT}/notes"),
    ],
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient,
    admin: Actor,
    method: str,
    path: str,
    content_type: str | None,
    raw: bytes,
) -> None:
    """Issue 10 item 12: every endpoint that takes a body takes JSON; anything else is a 415
    problem (it was a 422 complaining about the model's fields)."""
    headers = {**admin.headers, **({"Content-Type": content_type} if content_type else {})}
    response = await client.request(method, path, content=raw, headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/unsupported-media-type")


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"],
)
async def test_json_media_types_are_accepted(
    client: httpx.AsyncClient, admin: Actor, content_type: str
) -> None:
    """Issue 10 item 12: `application/json` with parameters, in any case, and `+json` types."""
    response = await client.patch(
        "/v1/departments/IT",
        content=b'{"name": "IT"}',
        headers={**admin.headers, "Content-Type": content_type},
    )
    assert response.status_code == 200, response.text


async def test_empty_bodies_are_not_checked(
    client: httpx.AsyncClient, admin: Actor, reporter: Actor
) -> None:
    """Issue 10 item 12: a request without a body (revoke a key, close an event) keeps working
    whatever Content-Type the client sends."""
    event = await client.post("/v1/events", json=intake_body(), headers=reporter.headers)
    for content_type in (None, "text/plain", "application/json"):
        headers = {**admin.headers, **({"Content-Type": content_type} if content_type else {})}
        close = await client.post(f"/v1/events/{event.json()['id']}/close", headers=headers)
        assert close.status_code == 409, close.text  # the gate, not the media type
        assert close.json()["type"].endswith("/transition-not-allowed")
    keys = await client.get(
        "/v1/api-keys", params={"user_id": str(reporter.id)}, headers=admin.headers
    )
    revoke = await client.request(
        "DELETE",
        f"/v1/api-keys/{keys.json()[0]['id']}",
        headers={**admin.headers, "Content-Type": "text/plain"},
    )
    assert revoke.status_code == 200, revoke.text


# ---- null where nullable ----------------------------------------------------------------------


def _nullable(schema: dict[str, Any]) -> bool:
    return any(option.get("type") == "null" for option in schema.get("anyOf", []))


@pytest.mark.parametrize(
    ("model", "path"),
    [("UserUpdate", "/v1/users/{id}"), ("DepartmentUpdate", "/v1/departments/IT")],
)
async def test_null_is_accepted_exactly_where_the_schema_allows_it(
    client: httpx.AsyncClient, admin: Actor, make_actor: MakeActor, model: str, path: str
) -> None:
    """Issue 10 item 12: for each field of the partial updates, `null` is accepted (clears it)
    when the published schema says nullable, and refused with a 422 naming the field when it
    does not (`name: null` was a nullable field refused without saying which)."""
    handler = await make_actor(Role.HANDLER, department="IT")
    url = path.format(id=handler.id)
    spec = (await client.get("/openapi.json")).json()
    properties = spec["components"]["schemas"][model]["properties"]
    assert properties
    for field, schema in properties.items():
        response = await client.patch(url, json={field: None}, headers=admin.headers)
        if _nullable(schema):
            assert response.status_code == 200, (field, response.text)
            assert response.json()[field] is None
        else:
            assert response.status_code == 422, (field, response.text)
            assert _fields(response) == [f"body.{field}"], field


# ---- internationalised e-mail addresses ---------------------------------------------------


INTERNATIONAL = ["wang@例子.中国", "用户@例子.广告", "josé.garcía@correo.es", "иван@пример.рф"]


@pytest.mark.parametrize("email", INTERNATIONAL)
async def test_internationalised_email_addresses_are_accepted(
    client: httpx.AsyncClient, reporter: Actor, admin: Actor, email: str
) -> None:
    """Issue 10 item 12 (RFC 6531, IDNA U-labels): as a reporter's and as a user's address."""
    body = intake_body(reporter={"name": "Wang", "email": email})
    event = await client.post("/v1/events", json=body, headers=reporter.headers)
    assert event.status_code == 201, event.text
    assert event.json()["reporter"]["email"] == email
    user = await client.post(
        "/v1/users",
        json={"name": "Wang", "email": email, "roles": ["handler"]},
        headers=admin.headers,
    )
    assert user.status_code == 201, user.text
    assert user.json()["email"] == email.lower()


@pytest.mark.parametrize(
    "email",
    [
        "a b@example.com",
        "wang@例子 .中国",
        "wang\u200b@example.com",  # zero-width space
        "wang@-例子.中国",
        "wang@例子..中国",
        "wang\u00a0@example.com",  # no-break space
        "wang@例子\u3000.中国",  # ideographic space
        "@例子.中国",
    ],
)
async def test_malformed_email_addresses_are_still_refused(
    client: httpx.AsyncClient, reporter: Actor, email: str
) -> None:
    body = intake_body(reporter={"name": "Wang", "email": email})
    response = await client.post("/v1/events", json=body, headers=reporter.headers)
    assert response.status_code == 422, email
    assert _fields(response) == ["body.reporter.email"]


# ---- occurred_at ----------------------------------------------------------------------------


@pytest.mark.parametrize(("hours", "status"), [(-240, 201), (12, 201), (25, 422), (24 * 400, 422)])
async def test_occurred_at_at_most_a_day_ahead(
    client: httpx.AsyncClient, reporter: Actor, hours: int, status: int
) -> None:
    """Issue 10 item 12: an event cannot have occurred more than a day from now (a day of
    tolerance for clocks and zones)."""
    moment = (datetime.now(UTC) + timedelta(hours=hours)).isoformat()
    response = await client.post(
        "/v1/events", json=intake_body(occurred_at=moment), headers=reporter.headers
    )
    assert response.status_code == status, response.text
    if status == 422:
        assert _fields(response) == ["body.occurred_at"]
        assert "future" in response.json()["detail"]
