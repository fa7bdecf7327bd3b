"""The checks a request body gets before any route sees it (issue 10 item 12).

`TransactionMiddleware` buffers every POST, PUT, PATCH and DELETE body; `body_problem` then
refuses a non-empty body that is not JSON (415) and a JSON object with a key twice (400), which
a JSON parser would otherwise silently resolve to the last value (RFC 8259 section 4 leaves it
open; I-JSON, RFC 7493 section 2.3, forbids it). An empty body is not checked: routes that take
none (close, revoke) keep working whatever the client declares.
"""

import json
from typing import Any

from app.core.errors import AppError, MalformedJson, UnsupportedMediaType


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return obj


# The C scanner with a hook per object: exact, which a byte-level pre-scan is not (the escaped
# key "\u0061" is "a"), and cheaper than the pre-scans tried in Python (bench/README.md).
_decoder = json.JSONDecoder(object_pairs_hook=_unique_object)


def is_json_media_type(content_type: str) -> bool:
    """`application/json` or a `+json` suffix (`application/merge-patch+json`), any
    parameters (`; charset=utf-8`), any case."""
    media_type = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def body_problem(content_type: str | None, body: bytes) -> AppError | None:
    """The problem with a buffered request body, or None when it may go on: 415 for a
    non-empty body that is not declared JSON, 400 for a key repeated in one object. A body
    that does not parse is left to the route, which answers 400 `malformed-json` itself."""
    if not body:
        return None
    if content_type is None or not is_json_media_type(content_type):
        sent = (content_type or "").partition(";")[0].strip()[:100]
        return UnsupportedMediaType(
            f"The body must be JSON (Content-Type: application/json), not {sent}"
            if sent
            else "The body must be JSON: send it with Content-Type: application/json"
        )
    try:
        # Decoded as json.loads decodes bytes (UTF-8, or UTF-16/32 by their first bytes).
        _decoder.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except _DuplicateKeyError as exc:
        return MalformedJson(f"The key {exc.key!r} appears twice in one JSON object")
    except (ValueError, RecursionError):  # not JSON, or not UTF-8: the route's 400
        return None
    return None
