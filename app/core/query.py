"""Unknown query parameters answer 422 on every endpoint (issue 13, item 6); boolean query
parameters are `true` or `false` only (`QueryBool`).

A misspelt or unsupported parameter (`?updated_since=` before it existed, `?stauts=`) used to
be ignored silently, so a client believed its filter worked. `reject_unknown_query` is an
app-wide dependency: it compares the request's query keys with the parameters the matched
route declares (its own and its dependencies'), computed once per route. A request without
a query string costs one dictionary lookup.
"""

from typing import Annotated, Any, Final
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

# id(dependant) -> (dependant, its names); routes are not hashable. Bounded, as tests build
# many apps.
_DECLARED: Final[dict[int, tuple[Dependant, frozenset[str]]]] = {}


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
    values = request.query_params.getlist(name)
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


async def reject_unknown_query(request: Request) -> None:
    """422 `validation-error` naming each query parameter the route does not declare."""
    query = request.scope.get("query_string")
    if not query:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if route is None or dependant is None:
        return
    known = _DECLARED.get(id(dependant))
    if known is not None and known[0] is dependant:
        declared = known[1]
    else:
        if len(_DECLARED) > 4096:
            _DECLARED.clear()
        declared = declared_query(dependant) | _extra_query(route)
        _DECLARED[id(dependant)] = (dependant, declared)
    given = {key for key, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
    for name in given & _extra_flags(route):
        query_flag(request, name)  # 422 here, with any other error of the request's query
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
