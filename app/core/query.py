"""Unknown query parameters answer 422 on every endpoint (issue 13, item 6); boolean query
parameters are `true` or `false` only (`QueryBool`).

A misspelt or unsupported parameter (`?updated_since=` before it existed, `?stauts=`) used to
be ignored silently, so a client believed its filter worked. Every router is an `ApiRouter`,
whose routes check before their handler runs: each compares the request's query keys with
the parameters the route declares (its own and its dependencies'), computed once per route.
A request without a query string costs one test.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError


def declared_query(dependant: Dependant) -> frozenset[str]:
    """The query parameter names a route's dependant declares, through its dependencies
    (aliases as sent; the fields of a query parameter model)."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            annotation = field.field_info.annotation
            model_fields = getattr(annotation, "model_fields", None)
            if isinstance(model_fields, dict):
                names.update(f.alias or n for n, f in model_fields.items())
            else:
                names.add(field.alias)
        pending.extend(current.dependencies)
    return frozenset(names)


def _extra_query(route: Any) -> set[str]:
    """Query parameters a route reads by hand and names in its `openapi_extra` (intake's
    `suggest`: a declared one costs the hot path its dependency solving)."""
    extra = getattr(route, "openapi_extra", None) or {}
    return {p["name"] for p in extra.get("parameters", ()) if p.get("in") == "query"}


def _extra_flags(route: Any) -> set[str]:
    """The boolean ones of `_extra_query`."""
    extra = getattr(route, "openapi_extra", None) or {}
    return {
        p["name"]
        for p in extra.get("parameters", ())
        if p.get("in") == "query" and p.get("schema", {}).get("type") == "boolean"
    }


def query_flag(request: Request, name: str) -> bool:
    """A boolean query parameter read by hand, as strictly as `QueryBool`: absent is false,
    `true` or `false` only (422 `validation-error` on `query.<name>` otherwise)."""
    return _flag_value(name, request.query_params.getlist(name))


def _flag_value(name: str, values: list[str]) -> bool:
    if not values:
        return False
    if len(values) == 1 and values[0] in ("true", "false"):
        return values[0] == "true"
    raise RequestValidationError(
        [
            {
                "type": "bool_parsing",
                "loc": ("query", name),
                "msg": "Input should be true or false",
                "input": values[-1],
            }
        ]
    )


def _check_query(declared: frozenset[str], flags: frozenset[str], query: bytes) -> None:
    """422 `validation-error` naming each query parameter the route does not declare
    (`declared`); a malformed value of a boolean it reads by hand (`flags`, `query_flag`) is
    refused here too, with any other error of the request's query."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    given = {key for key, _ in pairs}
    for name in given & flags:
        _flag_value(name, [value for key, value in pairs if key == name])
    unknown = given - declared
    if unknown:
        raise RequestValidationError(
            [
                {
                    "type": "unknown_query_parameter",
                    "loc": ("query", name),
                    "msg": "Unknown query parameter"
                    + (f"; this endpoint takes: {', '.join(sorted(declared))}" if declared else ""),
                    "input": None,
                }
                for name in sorted(unknown)
            ]
        )


class CheckedRoute(APIRoute):
    """An API route that refuses undeclared query parameters (issue 13 item 6) before its
    handler runs: the names it declares (its own and its dependencies') are computed once,
    when the handler is built. FastAPI's documented extension point (a custom route class)
    rather than an app-wide dependency, which cost every request a second round of dependency
    solving (bench/README.md); a request without a query string pays one test. The 422 reaches
    the app's exception handlers as a dependency's would."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declared = declared_query(self.dependant) | _extra_query(self)
        flags = frozenset(_extra_flags(self))

        async def checked(request: Request) -> Response:
            query = request.scope.get("query_string")
            if query:
                _check_query(declared, flags, query)
            return await handler(request)

        return checked


class ApiRouter(APIRouter):
    """Every router of the API: an `APIRouter` whose routes are `CheckedRoute`s."""

    def __init__(self, **options: Any) -> None:
        super().__init__(route_class=CheckedRoute, **options)


def _strict_bool(value: Any) -> Any:
    """`true` or `false` exactly; a bool given by code passes."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise PydanticCustomError("bool_parsing", "Input should be true or false")


# A boolean query parameter: only `true` or `false` (review of issue 10, item 9), where
# FastAPI's `bool` also takes `yes`, `on`, `1`, `True`..., so `?urgent=yes` was a filter.
QueryBool = Annotated[bool, BeforeValidator(_strict_bool)]
