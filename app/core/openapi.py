"""The OpenAPI document tells the truth (issue 15, item 1).

FastAPI's own document knows the routes' parameters and bodies, not the layers around them:
the transaction middleware (413, 415, duplicate keys, `Idempotency-Key`), authentication (401),
the app-wide refusal of unknown query parameters (422), the outage middleware (503), nor the
error handlers that answer every error as RFC 9457 `application/problem+json`. `complete`
adds what each operation can really answer, derived from the route itself, so a route added
later is covered with no table to update:

* every error response is the one `Problem` schema, under `application/problem+json`;
* 400/413/415 where a body is read (POST, PUT, PATCH, DELETE); 401 and 429 where a bearer
  token is required; 403 where the route declares it or checks roles in a dependency; 404
  where the path names a resource; 409 and `Idempotency-Key` on every POST; 412 where
  `If-Match` applies; 422 everywhere (unknown query parameters); 503 wherever the database
  is used;
* `ETag`, `Location`, `Link`, `X-Request-ID`, `Idempotent-Replayed` response headers;
* readable operation ids (camelCase of the endpoint's name) and tag descriptions;
* an example for every request body (`openapi_examples.EXAMPLES`, by schema name).
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import RouteContext, iter_route_contexts

from app.core.errors import _HTTP_TYPES, PROBLEM_BASE, PROBLEM_MEDIA_TYPE, AppError
from app.core.idempotency import MAX_KEY_LENGTH
from app.core.openapi_examples import EXAMPLES

Document = dict[str, Any]

PROBLEM_REF: Final = {"$ref": "#/components/schemas/Problem"}
SECURITY_SCHEME: Final = "bearerAuth"
_BODY_METHODS: Final = frozenset(("post", "put", "patch", "delete"))
# The readiness probe answers its own 503 body (not a problem): a load balancer reads it.
_OWN_ERROR_BODIES: Final = frozenset({("/readyz", "503")})
# Paths that never touch the database: they cannot answer 503.
_NO_DATABASE: Final = frozenset({"/healthz"})

# Operation ids that camelCase of the endpoint's name would not say well.
OPERATION_IDS: Final[Mapping[str, str]] = {
    "healthz": "getHealth",
    "readyz": "getReadiness",
    "evaluate": "evaluatePolicy",
    "replay": "replayDeliveries",
    "resend": "resendDelivery",
    "send_test": "sendTestMessage",
    "rotate_secret": "rotateEndpointSecret",
    "read_me": "getMe",
    "my_queue": "getMyQueue",
    "judge_item": "judgeSpotCheckItem",
    "read_survey": "getSurvey",
}

# Tags in the order of the loop (product.md section 2), then the rest.
TAGS: Final[Mapping[str, str]] = {
    "events": "Intake (R3.1) and reading events: lists, one event, timeline, SLA clocks.",
    "assessment": "Classification and grading (R3.2.1-2), assignment (R3.2.3).",
    "handling": "The plan and its steps, progress notes, the resolution (R3.3).",
    "feedback": "Feedback to the intake desk and to the reporter, satisfaction (R3.4, R6).",
    "surveys": "The login-free satisfaction survey behind a signed link (R6.2).",
    "review": "The summary review and improvement actions, verified effective (R3.5).",
    "closing": "The checklist of gates, close, reopen, cancel (R1.3).",
    "queue": "What the caller must do now, soonest due first (R1.3.1).",
    "supervision": "Spot checks and rectification orders (R5.2, R5.3).",
    "kpis": "Key figures: on-time rate, satisfaction, recurrence (R5.4).",
    "policy": "The versioned policy document: taxonomy, grading, routing, deadlines (R2, R3).",
    "directory": "Departments, users, API keys, the caller.",
    "webhooks": "Signed webhook endpoints, deliveries, replay (Standard Webhooks).",
    "operations": "Liveness and readiness.",
}

_DEFAULT_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "400": "Malformed JSON body, or a key twice in one JSON object (`malformed-json`); a "
    "cursor that is not a `next_cursor` of this list (`invalid-cursor`)",
    "401": "Missing, unknown or revoked bearer token (`unauthorized`)",
    "403": "Your role may not do this (`forbidden`)",
    "404": "No such resource, or you may not see it (`not-found`; never 403)",
    "409": "Conflict: a gate is not met (`missing`), the action is not allowed now "
    "(`allowed`), or a request with this Idempotency-Key is still running",
    "410": "Gone",
    "412": "If-Match names another version (`precondition-failed`, `current_version`)",
    "413": "Request body too large (`payload-too-large`)",
    "415": "A request body that is not JSON (`unsupported-media-type`)",
    "422": "The request is not valid (`validation-error`, each field in `errors`), or the "
    "Idempotency-Key was used with another request (`idempotency-key-reused`)",
    "429": "Too many failed authentications from this client; retry after `Retry-After`",
    "503": "The database cannot be reached; retry after `Retry-After` (`service-unavailable`)",
}

# What every request keeps, said once for the whole document (the schemas say what they can).
CONVENTIONS: Final = """
* Errors: every error is a `Problem` (RFC 9457 `application/problem+json`); each operation
  lists the statuses it can answer.
* Request text has no control characters but tab, line feed and carriage return, and is
  stripped of surrounding white space before its length is checked; no NUL character is
  taken anywhere, a path or a query included (PostgreSQL cannot store it).
* Times are RFC 3339 with a zone, between the years 1900 and 2200; a period's start comes
  before its end. Integers are JSON integers (`5`, not `5.0` or `"5"`): no value is coerced
  from another JSON type.
"""

BEARER_DESCRIPTION: Final = (
    "`Authorization: Bearer <token>`: an API key (`cle_…`, shown once when created with "
    "`POST /v1/api-keys` or `python -m app create-api-key`) or, when the service is "
    "configured for OpenID Connect, an access token from that issuer."
)


@dataclass(frozen=True, slots=True)
class Facts:
    """What one route does, as far as its document goes."""

    route: RouteContext
    method: str
    secured: bool
    versioned: frozenset[str]  # the response schemas that carry a `version`

    @property
    def path(self) -> str:
        return self.route.path_format or ""

    def _dependants(self) -> Iterable[Dependant]:
        yield self.route.dependant
        yield from _all_dependencies(self.route.dependant)

    def has_path_ids(self) -> bool:
        return any(d.path_params for d in self._dependants())

    def has_header(self, name: str) -> bool:
        return any(
            (p.alias or p.name).lower() == name.lower()
            for d in self._dependants()
            for p in d.header_params
        )

    def has_query(self, name: str) -> bool:
        return any((p.alias or p.name) == name for d in self._dependants() for p in d.query_params)

    def checks_roles(self) -> bool:
        """A dependency made by `auth.require_roles` (403 unless the caller has a role)."""
        return any(
            "require_roles" in getattr(dep.call, "__qualname__", "")
            for dep in _all_dependencies(self.route.dependant)
        )


def _all_dependencies(dependant: Dependant) -> Iterable[Dependant]:
    pending = list(dependant.dependencies)
    while pending:
        current = pending.pop()
        yield current
        pending.extend(current.dependencies)


def operation_id(name: str) -> str:
    """`create_event` -> `createEvent` (unless `OPERATION_IDS` names it better)."""
    if name in OPERATION_IDS:
        return OPERATION_IDS[name]
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def problem_types() -> list[tuple[int, str, str]]:
    """(status, type, title) of every problem the service answers on purpose."""
    found: set[tuple[int, str, str]] = {
        (status, type_, title) for status, (type_, title) in _HTTP_TYPES.items()
    }
    found.add((500, "internal-error", "Internal server error"))
    pending: list[type[AppError]] = [AppError]
    while pending:
        cls = pending.pop()
        found.add((cls.status, cls.type, cls.title))
        pending.extend(cls.__subclasses__())
    return sorted(found)


def _problem_schema() -> Document:
    types = "\n".join(
        f"* `{status}` `{PROBLEM_BASE}{type_}`: {title}" for status, type_, title in problem_types()
    )
    return {
        "title": "Problem",
        "type": "object",
        "description": "An RFC 9457 problem. `type` is stable: branch on it, not on `title` "
        "or `detail`. Our extensions: `errors` (validation, one per field), `missing` (a "
        "gate's unmet requirements), `allowed` (the actions allowed now, with `status_now` "
        "and `action`), `current_version` (412), `location` and `resource` "
        "(`idempotency-secret-withheld`). The types:\n" + types,
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {
                "type": "string",
                "description": f"`{PROBLEM_BASE}<name>`, or `about:blank`",
                "examples": [f"{PROBLEM_BASE}gate-not-met"],
            },
            "title": {"type": "string", "examples": ["Required steps are missing"]},
            "status": {"type": "integer", "minimum": 400, "maximum": 599, "examples": [409]},
            "detail": {"type": "string", "examples": ["Missing: category, impact"]},
            "instance": {"type": "string", "description": "The request's path"},
            "errors": {
                "type": "array",
                "description": "Validation errors, one per field (422)",
                "items": {"$ref": "#/components/schemas/ProblemFieldError"},
            },
            "missing": {
                "type": "array",
                "description": "What a gate still needs (409 `gate-not-met`)",
                "items": {"type": "string"},
            },
            "allowed": {
                "type": "array",
                "description": "The actions allowed now (409 `transition-not-allowed`)",
                "items": {"type": "string"},
            },
            "status_now": {"type": "string", "description": "The status the action met"},
            "action": {"type": "string", "description": "The action that was refused"},
            "current_version": {
                "type": "integer",
                "description": "The resource's version now (412)",
            },
            "location": {"type": "string", "description": "Where the first request's resource is"},
            "resource": {
                "type": "object",
                "description": "The first response without its secret fields",
            },
        },
        "additionalProperties": True,
    }


_FIELD_ERROR: Final[Document] = {
    "title": "ProblemFieldError",
    "type": "object",
    "required": ["field", "message"],
    "properties": {
        "field": {"type": "string", "examples": ["body.reporter.email"]},
        "message": {"type": "string", "examples": ["value is not a valid email address"]},
        "code": {
            "type": "string",
            "description": "The rule that failed, when the field failed one",
            "examples": ["value_error"],
        },
    },
}


def _header(description: str, *, pattern: str | None = None) -> Document:
    schema: Document = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    return {"description": description, "schema": schema}


HEADERS: Final[Mapping[str, Document]] = {
    "X-Request-ID": {
        "description": "The request's id (the caller's when valid, else a new one); it is in "
        "every log line of the request",
        "required": True,
        "schema": {"type": "string"},
    },
    "ETag": _header('The resource\'s version as a strong ETag, e.g. "v3": send it as If-Match'),
    "Location": _header("The path of the resource created (or found by its external_ref)"),
    "Link": _header('RFC 8288 `<…>; rel="next"`: the next page, when there is one'),
    "Idempotent-Replayed": _header(
        "`true` when this is the stored first response to the same Idempotency-Key"
    ),
    "Retry-After": _header("Seconds to wait before retrying"),
    "WWW-Authenticate": _header("`Bearer realm=…`"),
}

IDEMPOTENCY_KEY: Final[Document] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a POST safe to retry: a replay within 24 hours returns the first "
    "(successful) response with `Idempotent-Replayed: true`; the same key with another "
    "body is 422 `idempotency-key-reused`; while the first is still running, 409.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


def _header_ref(name: str) -> Document:
    return {"$ref": f"#/components/headers/{name}"}


def _error_statuses(facts: Facts, declared: Iterable[str]) -> set[str]:
    statuses = {s for s in declared if s[:1] in "45"}
    # A router's shared declarations, where this route cannot answer them: a stale If-Match
    # without If-Match, a state conflict on a read.
    if not facts.has_header("If-Match"):
        statuses.discard("412")
    if facts.method == "get":
        statuses.discard("409")
    statuses.add("422")
    if facts.method in _BODY_METHODS:
        statuses |= {"400", "413", "415"}
    if facts.secured:
        statuses |= {"401", "429"}
        if facts.checks_roles():
            statuses.add("403")
    if facts.has_path_ids():
        statuses.add("404")
    if facts.has_query("cursor"):
        statuses.add("400")  # `invalid-cursor`: only a `next_cursor` the service gave is valid
    if facts.method == "post":
        statuses.add("409")
    if facts.has_header("If-Match"):
        statuses.add("412")
    if facts.path not in _NO_DATABASE:
        statuses.add("503")
    return statuses


def _error_response(status: str, declared: Document | None) -> Document:
    description = (declared or {}).get("description") or _DEFAULT_DESCRIPTIONS.get(status, "")
    if status == "422":  # FastAPI's default description says nothing of our shape
        description = _DEFAULT_DESCRIPTIONS["422"]
    headers: Document = {"X-Request-ID": _header_ref("X-Request-ID")}
    if status in ("429", "503"):
        headers["Retry-After"] = _header_ref("Retry-After")
    if status == "401":
        headers["WWW-Authenticate"] = _header_ref("WWW-Authenticate")
    return {
        "description": description or "Error",
        "headers": headers,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
    }


def _success_headers(facts: Facts, status: str, response: Document) -> None:
    headers = response.setdefault("headers", {})
    headers["X-Request-ID"] = _header_ref("X-Request-ID")
    if facts.has_header("If-Match") or _has_version(response, facts.versioned):
        headers["ETag"] = _header_ref("ETag")
    if status == "201" or (facts.method == "post" and facts.path == "/v1/events"):
        headers["Location"] = _header_ref("Location")
    if facts.has_query("cursor"):
        headers["Link"] = _header_ref("Link")
    if facts.method == "post":
        headers["Idempotent-Replayed"] = _header_ref("Idempotent-Replayed")


def _has_version(response: Document, versioned: frozenset[str]) -> bool:
    """The response's schema carries a `version` (an event, a rectification order)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    options = [schema, *schema.get("oneOf", ()), *schema.get("anyOf", ())]
    return any(str(option.get("$ref", "")).rsplit("/", 1)[-1] in versioned for option in options)


def _complete_operation(facts: Facts, operation: Document, schemas: Document) -> None:
    path = facts.path
    operation["operationId"] = operation_id(facts.route.name or "")
    responses: Document = operation["responses"]
    for status, response in list(responses.items()):
        if status[:1] == "2":
            _success_headers(facts, status, response)
    declared = [s for s in responses if s[:1] in "45" and (path, s) not in _OWN_ERROR_BODIES]
    statuses = _error_statuses(facts, declared)
    for status in declared:
        if status not in statuses:
            del responses[status]
    for status in sorted(statuses):
        if (path, status) in _OWN_ERROR_BODIES and status in responses:
            own = responses[status]
            own["headers"] = {"X-Request-ID": _header_ref("X-Request-ID")}
            own.setdefault("content", {"application/json": {"schema": {"type": "object"}}})
        else:
            responses[status] = _error_response(status, responses.get(status))
    if facts.secured:
        operation["security"] = [{SECURITY_SCHEME: []}]
    else:
        operation["security"] = []
    parameters: list[Document] = operation.setdefault("parameters", [])
    if facts.method == "post":
        parameters.append(IDEMPOTENCY_KEY)
    if not parameters:
        del operation["parameters"]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        name = body.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
        if name in EXAMPLES:
            body["examples"] = EXAMPLES[name]
        elif own := schemas.get(name, {}).get("examples"):  # the model's own
            body["examples"] = {f"example{i + 1}": {"value": v} for i, v in enumerate(own)}


# Request text (`schemas.RequestModel`): no control characters but tab, line feed and carriage
# return, and stripped of surrounding white space before its length is checked, so a required
# text needs one character that is not white space. Written as \uXXXX escapes, the same to
# Python's re, pydantic-core and ECMAScript.
_CONTROLS: Final = "\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f"
TEXT_PATTERN: Final = f"^[^{_CONTROLS}]*$"
NOT_BLANK_PATTERN: Final = f"^[^{_CONTROLS}]*[^\\s{_CONTROLS}][^{_CONTROLS}]*$"

# The rules across fields of a request body that the service checks (the models' validators),
# as JSON Schema where it can say them, and in words.
_NOT_NULL: Final[Document] = {"not": {"type": "null"}}
CROSS_FIELD: Final[Mapping[str, tuple[Document, str]]] = {
    "SatisfactionIn": (
        {
            "oneOf": [
                {
                    "required": ["score"],
                    "properties": {"score": _NOT_NULL, "unreachable": {"const": False}},
                },
                {
                    "required": ["unreachable", "attempts"],
                    "properties": {
                        "unreachable": {"const": True},
                        "attempts": _NOT_NULL,
                        "score": {"type": "null"},
                    },
                },
            ]
        },
        "Either a `score`, or `unreachable: true` with the number of `attempts`.",
    ),
    "FeedbackDecision": (
        {
            "anyOf": [
                {"properties": {"decision": {"const": "accept"}}},
                {"required": ["note"], "properties": {"note": _NOT_NULL}},
            ]
        },
        "Returning feedback (`decision: return`) needs a `note` saying why.",
    ),
    "ItemJudgement": (
        {
            "anyOf": [
                {"required": [question], "properties": {question: _NOT_NULL}}
                for question in ("intake_timely", "process_followed", "result_effective")
            ]
        },
        "Answer at least one of the three questions.",
    ),
    "SpotCheckCreate": (
        {
            "not": {
                "required": ["sample_size", "sample_rate"],
                "properties": {"sample_size": _NOT_NULL, "sample_rate": _NOT_NULL},
            }
        },
        "`from` must be before `to`; give `sample_size` or `sample_rate`, not both.",
    ),
    "ReplayRequest": ({}, "`since` must be before `until`."),
    "Impact": ({}, "`financial_loss` has at most two decimal places."),
    "RectificationVerificationIn": (
        {
            "anyOf": [
                {"properties": {"accepted": {"const": True}}},
                {"required": ["note"], "properties": {"note": _NOT_NULL}},
            ]
        },
        "Rejecting a response (`accepted: false`) needs a `note` saying why.",
    ),
}


def _request_schemas(document: Document) -> set[str]:
    """The component schemas a request body refers to, directly or not."""
    pending = [
        media["schema"]
        for item in document["paths"].values()
        for operation in item.values()
        for media in operation.get("requestBody", {}).get("content", {}).values()
        if "schema" in media
    ]
    schemas: Document = document["components"]["schemas"]
    found: set[str] = set()
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                name = ref.rsplit("/", 1)[-1]
                if name not in found and name in schemas:
                    found.add(name)
                    pending.append(schemas[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found


def _tighten(node: Any) -> None:
    """Say in `node` (a request schema) what `RequestModel` enforces: text patterns, and a
    decimal as a JSON number only (a string standing for it is refused)."""
    if isinstance(node, list):
        for item in node:
            _tighten(item)
        return
    if not isinstance(node, dict):
        return
    branches = node.get("anyOf")
    if isinstance(branches, list):
        kinds = [b.get("type") if isinstance(b, dict) else None for b in branches]
        if len(kinds) == 2 and set(kinds) == {"number", "string"}:  # pydantic's Decimal
            node.pop("anyOf")
            node.update(next(b for b in branches if b.get("type") == "number"))
    if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(node):
        node["pattern"] = NOT_BLANK_PATTERN if node.get("minLength", 0) >= 1 else TEXT_PATTERN
    for key, value in node.items():
        if key not in ("examples", "example", "default", "const", "enum"):
            _tighten(value)


NO_NUL_PATTERN: Final = "^[^\\u0000]*$"


def _no_nul(schema: Document) -> None:
    """A path or query string takes no NUL (`TransactionMiddleware` refuses it with 422)."""
    for option in (schema, *schema.get("anyOf", ())):
        if option.get("type") == "array" and isinstance(option.get("items"), dict):
            _no_nul(option["items"])
        if option.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(
            option
        ):
            option["pattern"] = NO_NUL_PATTERN


def _strict_requests(document: Document) -> None:
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") in ("path", "query") and "schema" in parameter:
                    _no_nul(parameter["schema"])
    schemas: Document = document["components"]["schemas"]
    for name in sorted(_request_schemas(document)):
        _tighten(schemas[name])
        rule = CROSS_FIELD.get(name)
        if rule is not None:
            keywords, text = rule
            schemas[name].update(keywords)
            described = schemas[name].get("description", "")
            schemas[name]["description"] = (described + "\n\n" + text).strip()


def _drop_fastapi_validation(schemas: Document) -> None:
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def complete(
    document: Document, app: FastAPI, *, public: Callable[[str], bool], oidc_issuer: str = ""
) -> Document:
    """`document` (FastAPI's) made truthful for `app`'s routes; `public(path)`: the path is
    answered without a bearer token; `oidc_issuer`: people's OIDC tokens are taken too."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    versioned = frozenset(
        name for name, schema in schemas.items() if "version" in schema.get("properties", {})
    )
    for route in iter_route_contexts(app.routes):
        if not getattr(route, "include_in_schema", False) or route.path_format is None:
            continue
        item = document["paths"].get(route.path_format, {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is None:
                continue
            facts = Facts(route, method.lower(), not public(route.path_format), versioned)
            _complete_operation(facts, operation, schemas)
    _drop_fastapi_validation(schemas)
    _strict_requests(document)
    info = document.setdefault("info", {})
    info["description"] = info.get("description", "").rstrip() + "\n" + CONVENTIONS
    schemas["Problem"] = _problem_schema()
    schemas["ProblemFieldError"] = _FIELD_ERROR
    components["headers"] = dict(HEADERS)
    components["securitySchemes"] = {
        SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "description": BEARER_DESCRIPTION}
    }
    if oidc_issuer:
        _add_oidc(document, oidc_issuer)
    used = sorted(
        {
            tag
            for item in document["paths"].values()
            for op in item.values()
            for tag in op.get("tags", ())
        }
    )
    document["tags"] = [
        {"name": tag, "description": TAGS.get(tag, "")}
        for tag in [*(t for t in TAGS if t in used), *(t for t in used if t not in TAGS)]
    ]
    _check_unique_ids(document)
    _add_links(document)
    return document


_PATH_PARAMETER: Final = re.compile(r"\{([^}]+)\}")


def _add_links(document: Document) -> None:
    """OpenAPI links from each create (a POST answering 201) to the operations on what it
    made (`POST /v1/rectifications` -> `/v1/rectifications/{order_id}/response`): the new
    resource's key from the response, the other path parameters from the request. They let
    a client (and the contract run's stateful phase) follow the API the way it is used."""
    schemas: Document = document["components"]["schemas"]
    operations = [
        (path, operation) for path, item in document["paths"].items() for operation in item.values()
    ]
    for path, item in document["paths"].items():
        create = item.get("post", {})
        created = create.get("responses", {}).get("201")
        if created is None:
            continue
        schema = created.get("content", {}).get("application/json", {}).get("schema", {})
        fields = {
            field
            for option in (schema, *schema.get("oneOf", ()))
            for field in schemas.get(str(option.get("$ref", "")).rsplit("/", 1)[-1], {}).get(
                "properties", {}
            )
        }
        links: Document = {}
        for target_path, target in operations:
            match = re.fullmatch(re.escape(path) + r"/\{([^}]+)\}(?:/.*)?", target_path)
            if match is None:
                continue
            key = match.group(1)
            field = "code" if key == "code" else "id"
            if field not in fields:
                continue
            parameters = {name: f"$request.path.{name}" for name in _PATH_PARAMETER.findall(path)}
            parameters[key] = f"$response.body#/{field}"
            links[target["operationId"]] = {
                "operationId": target["operationId"],
                "parameters": parameters,
            }
        if links:
            created["links"] = dict(sorted(links.items()))


def _add_oidc(document: Document, issuer: str) -> None:
    """Where OIDC is configured, its discovery document beside the bearer scheme: either
    secures every operation that takes a bearer token."""
    document["components"]["securitySchemes"]["oidc"] = {
        "type": "openIdConnect",
        "openIdConnectUrl": issuer.rstrip("/") + "/.well-known/openid-configuration",
        "description": "An access token of the company's OpenID Connect issuer, sent as a "
        "bearer token",
    }
    for item in document["paths"].values():
        for operation in item.values():
            if operation.get("security"):
                operation["security"] = [{SECURITY_SCHEME: []}, {"oidc": []}]


def _check_unique_ids(document: Document) -> None:
    """Two endpoints with one name would share an operation id: suffix the later ones."""
    seen: set[str] = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            op_id = operation.get("operationId", "")
            if op_id in seen:
                suffix = re.sub(r"[^A-Za-z0-9]+", " ", path).title().replace(" ", "")
                operation["operationId"] = op_id + method.title() + suffix
            seen.add(operation["operationId"])


def install_openapi(app: FastAPI, *, public: Callable[[str], bool], oidc_issuer: str = "") -> None:
    """`app.openapi()` returns the completed document (built once, on first use)."""
    build = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            try:
                app.openapi_schema = complete(build(), app, public=public, oidc_issuer=oidc_issuer)
            except BaseException:
                app.openapi_schema = None  # FastAPI's own, half done: never served
                raise
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
