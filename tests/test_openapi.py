"""The committed OpenAPI document is the code's: regenerate with `python -m app openapi`."""

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from app.cli import openapi_document
from app.core.config import Settings
from app.main import create_app
from tests.conftest import Actor

SPEC = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    generated = openapi_document()
    assert SPEC.read_text(encoding="utf-8") == generated, (
        "openapi/openapi.json is stale: run `python -m app openapi`"
    )


def test_every_operation_documents_its_purpose_and_errors_are_problems() -> None:
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("description") or operation.get("summary"), (method, path)


# ---- The document tells the truth (issue 15, item 1): checked on the code's own document, so
# a new route is held to it before openapi/openapi.json is regenerated. What each operation
# really answers is checked by the contract run (tests/contract).

ROOT = SPEC.parents[1]
PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app().openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_error_is_a_problem_and_fastapis_422_is_gone(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in json.dumps(document)
    for method, path, operation in _operations(document):
        for status, response in operation["responses"].items():
            if status[0] in "45" and (path, status) != ("/readyz", "503"):
                content = response["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
                assert content["application/problem+json"]["schema"] == PROBLEM
        assert "422" in operation["responses"], (method, path)


def test_problem_schema_has_our_extensions(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert {"errors", "missing", "allowed", "instance"} <= set(problem["properties"])
    assert "gate-not-met" in problem["description"]


def test_statuses_follow_what_the_operation_does(document: dict[str, Any]) -> None:
    ops = {(m, p): o for m, p, o in _operations(document)}
    classify = ops[("post", "/v1/events/{event_id}/classification")]["responses"]
    assert {"400", "401", "403", "404", "409", "412", "413", "415", "422", "503"} <= set(classify)
    assert "403" not in ops[("get", "/v1/events/{event_id}")]["responses"]  # 404, never 403
    assert "412" not in ops[("post", "/v1/events")]["responses"]  # no If-Match on intake
    assert "404" not in ops[("get", "/v1/events")]["responses"]  # no id in the path
    assert "401" not in ops[("get", "/v1/surveys/{token}")]["responses"]  # login-free
    assert set(ops[("get", "/healthz")]["responses"]) == {"200", "422"}
    for method, path, operation in _operations(document):
        names = {p["name"] for p in operation.get("parameters", ())}
        responses = operation["responses"]
        assert ("If-Match" in names) == ("412" in responses), (method, path)
        assert ("Idempotency-Key" in names) == (method == "post"), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)


def test_security_scheme_and_readable_operation_ids(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)*", op_id) for op_id in ids), ids
    ops = {(m, p): o for m, p, o in _operations(document)}
    assert ops[("post", "/v1/events")]["operationId"] == "createEvent"
    assert ops[("post", "/v1/events/{event_id}/classification")]["operationId"] == "classifyEvent"
    for method, path, operation in _operations(document):
        secured = path.startswith("/v1/") and not path.startswith("/v1/surveys/")
        assert operation["security"] == ([{"bearerAuth": []}] if secured else []), (method, path)


def test_response_headers(document: dict[str, Any]) -> None:
    ops = {(m, p): o for m, p, o in _operations(document)}
    created = ops[("post", "/v1/events")]["responses"]["201"]["headers"]
    assert {"Location", "ETag", "X-Request-ID", "Idempotent-Replayed"} <= set(created)
    assert "Link" in ops[("get", "/v1/events")]["responses"]["200"]["headers"]
    for _, _, operation in _operations(document):
        for response in operation["responses"].values():
            assert "X-Request-ID" in response.get("headers", {})


def test_every_request_body_has_an_example_the_service_accepts(
    document: dict[str, Any],
) -> None:
    """Each example is valid for the route's own request model (a Chinese one included)."""
    app = create_app()
    bodies: dict[str, Any] = {}
    for route in iter_route_contexts(app.routes):
        body = getattr(route, "body_field", None)
        if body is not None:
            bodies[body.field_info.annotation.__name__] = body.field_info.annotation
    han = re.compile(r"[\u4e00-\u9fff]")
    chinese = False
    for method, path, operation in _operations(document):
        media = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if media is None:
            continue
        examples = media.get("examples")
        assert examples, (method, path)
        model = bodies[media["schema"]["$ref"].rsplit("/", 1)[1]]
        for example in examples.values():
            model.model_validate(example["value"])
            chinese = chinese or bool(han.search(json.dumps(example, ensure_ascii=False)))
    assert chinese


def test_request_text_is_as_strict_as_the_service(document: dict[str, Any]) -> None:
    """No control characters, and required text is not blank (`RequestModel`); cross-field
    rules are in the schema (a satisfaction is a score or unreachable with attempts)."""
    note = document["components"]["schemas"]["ReopenIn"]["properties"]["reason"]
    assert re.search(note["pattern"], "客户对处理结果不满意")
    assert not re.search(note["pattern"], "   ")
    assert not re.search(note["pattern"], "a\x07b")
    satisfaction = document["components"]["schemas"]["SatisfactionIn"]
    assert len(satisfaction["oneOf"]) == 2
    assert "attempts" in satisfaction["description"]


def test_the_document_names_only_files_in_the_repository(document: dict[str, Any]) -> None:
    text = json.dumps(document, ensure_ascii=False)
    for name in set(re.findall(r"[A-Za-z0-9_/.-]+\.(?:md|py|json|toml|ts)\b", text)):
        assert (ROOT / name).exists() or name.startswith("/"), name


def test_oidc_scheme_where_oidc_is_configured() -> None:
    """An OIDC token is taken beside API keys where OIDC_ISSUER is set (issue 16 item 1)."""
    settings = Settings(
        DATABASE_URL="postgresql://unused/unused",
        OIDC_ISSUER="https://login.example.com/realms/acme",
        OIDC_AUDIENCE="closed-loop-events",
    )
    document = create_app(settings).openapi()
    oidc = document["components"]["securitySchemes"]["oidc"]
    assert oidc["openIdConnectUrl"].endswith("/realms/acme/.well-known/openid-configuration")
    me = document["paths"]["/v1/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}, {"oidc": []}]


def test_creates_link_to_what_they_made(document: dict[str, Any]) -> None:
    """OpenAPI links (the contract run's stateful phase follows them): the new key from the
    response, the other path parameters from the request."""
    paths = document["paths"]
    order = paths["/v1/rectifications"]["post"]["responses"]["201"]["links"]
    assert order["respondToRectification"]["parameters"] == {"order_id": "$response.body#/id"}
    action = paths["/v1/events/{event_id}/actions"]["post"]["responses"]["201"]["links"]
    assert action["verifyAction"]["parameters"] == {
        "event_id": "$request.path.event_id",
        "action_id": "$response.body#/id",
    }
    assert "classifyEvent" in paths["/v1/events"]["post"]["responses"]["201"]["links"]


async def test_the_policy_example_is_a_policy_the_service_takes(
    client: httpx.AsyncClient, admin: Actor, document: dict[str, Any]
) -> None:
    """`PUT /v1/policy` is checked as a whole document, beyond its model: its example is the
    whole default document, which the service takes."""
    media = document["paths"]["/v1/policy"]["put"]["requestBody"]["content"]["application/json"]
    (example,) = media["examples"].values()
    response = await client.put("/v1/policy", json=example["value"], headers=admin.headers)
    assert response.status_code == 200, response.text
