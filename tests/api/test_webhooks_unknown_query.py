"""Issue 13, item 6 (second half): a query parameter a route does not declare answers 422
`validation-error` naming it, on every route (app/core/query.py); declared ones still work."""

import re
import uuid

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from app.main import create_app
from tests.api.flow import call, refused
from tests.conftest import Actor

UNKNOWN = "zz_not_a_parameter"


def _operations() -> list[tuple[str, str]]:
    app = create_app()
    found: list[tuple[str, str]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route if hasattr(context, "original_route") else context
        if not isinstance(route, APIRoute):
            continue
        path = re.sub(r"\{[^}]+\}", str(uuid.UUID(int=7)), str(context.path))
        found.extend((method, path) for method in sorted(context.methods or ()))
    return sorted(set(found))


OPERATIONS = _operations()


def test_every_route_is_covered() -> None:
    assert len(OPERATIONS) > 40
    assert ("GET", "/v1/events") in OPERATIONS
    assert ("POST", "/v1/webhook-endpoints") in OPERATIONS


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_an_unknown_query_parameter_is_a_422(
    client: httpx.AsyncClient, admin: Actor, method: str, path: str
) -> None:
    problem = await refused(
        client, method, f"{path}?{UNKNOWN}=1&limit=5", admin, json=None, status=422
    )
    assert problem["type"].endswith("/validation-error"), problem
    fields = [e["field"] for e in problem["errors"]]
    assert f"query.{UNKNOWN}" in fields, problem


async def test_declared_parameters_still_work(client: httpx.AsyncClient, admin: Actor) -> None:
    await call(client, "GET", "/v1/events?limit=5&status=reported&status=closed", admin)
    await call(client, "GET", "/v1/webhook-endpoints?limit=1", admin)
    problem = await refused(client, "GET", "/v1/events?stauts=closed", admin, status=422)
    assert [e["field"] for e in problem["errors"]] == ["query.stauts"]
