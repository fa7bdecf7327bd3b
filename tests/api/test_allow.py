"""`Allow` on a 405 lists every method the path supports (issue 10, item 9).

The router answers 405 from the first route whose path matched, with that route's methods
only: `DELETE /v1/users/{id}` said `allow: GET` though PATCH is served there too. Every route
path of the app is checked with each method it does not serve, and with `OPTIONS` (CORS is not
configured, so OPTIONS is a 405 like any other unsupported method).
"""

import re
import uuid
from collections import defaultdict
from typing import Final

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from app.core.config import Settings
from app.main import create_app

METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Path parameters replaced by a value that looks valid (any value matches the route's path).
VALUES: Final = {"code": "CS", "version": "1", "token": "svy_" + "x" * 43}
PARAMETER: Final = re.compile(r"\{(\w+)(?::\w+)?\}")


def _supported() -> dict[str, frozenset[str]]:
    """Route template -> every method some route serves at it."""
    app = create_app(Settings(DATABASE_URL="postgresql://unused/unused"))
    methods: defaultdict[str, set[str]] = defaultdict(set)
    for route in iter_route_contexts(app.routes):
        if route.path_format is not None:
            methods[route.path_format].update(route.methods or ())
    return {path: frozenset(m) for path, m in methods.items()}


SUPPORTED: Final = _supported()


def concrete(template: str) -> str:
    return PARAMETER.sub(lambda m: VALUES.get(m.group(1), str(uuid.uuid4())), template)


def test_the_probes_case_is_among_the_paths() -> None:
    assert SUPPORTED["/v1/users/{user_id}"] == {"GET", "PATCH"}
    assert len(SUPPORTED) > 30


@pytest.mark.parametrize("template", sorted(SUPPORTED))
async def test_405_allows_every_method_of_the_path(
    client: httpx.AsyncClient, template: str
) -> None:
    path = concrete(template)
    supported = SUPPORTED[template]
    unsupported = [m for m in METHODS if m not in supported]
    assert "OPTIONS" in unsupported
    for method in unsupported:
        response = await client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert set(response.headers["allow"].split(", ")) == supported, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/method-not-allowed")
