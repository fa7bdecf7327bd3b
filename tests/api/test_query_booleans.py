"""Boolean query parameters are `true` or `false`, nothing else (review of issue 10, item 9).

FastAPI's `bool` took `yes`, `on`, `1`, `True`, so `?urgent=yes` filtered where a client may
have meant something else; request bodies already refuse such values (issue 10 item 12). Every
boolean query parameter of every endpoint is checked, so a new one cannot slip back.
"""

import httpx
from fastapi import FastAPI

from tests.api.test_allow import concrete
from tests.conftest import Actor

LAX = ("yes", "no", "1", "0", "on", "True", "FALSE", "t", "")


def _boolean_query_parameters(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path template, name) of every boolean query parameter in the OpenAPI doc."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                types = [s.get("type") for s in schema.get("anyOf", [schema])]
                if parameter["in"] == "query" and "boolean" in types:
                    found.append((method.upper(), path, parameter["name"]))
    return found


async def test_every_boolean_query_parameter_takes_only_true_or_false(
    app: FastAPI, client: httpx.AsyncClient, admin: Actor
) -> None:
    found = _boolean_query_parameters(app)
    assert ("GET", "/v1/events", "urgent") in found
    for method, template, name in found:
        path = concrete(template)
        for value in LAX:
            response = await client.request(
                method, path, params={name: value}, headers=admin.headers
            )
            assert response.status_code == 422, (template, name, value, response.text)
            # A POST sent with no body also hears about the body; the query is what counts.
            fields = [e["field"] for e in response.json()["errors"] if e["field"] != "body"]
            assert fields == [f"query.{name}"], (template, name, value)
        for value in ("true", "false"):
            response = await client.request(
                method, path, params={name: value}, headers=admin.headers
            )
            refused = response.json().get("errors", []) if response.status_code == 422 else []
            assert f"query.{name}" not in [e["field"] for e in refused], (template, name, value)
