"""Every malformed cursor is a clean 400 `invalid-cursor` (issue 10, item 5).

A cursor is opaque: base64url of `{"v": 1, "t": <RFC 3339 time>, "i": <UUID>}`. A crafted one
whose time does not exist in UTC (year 1 at +14:00) used to reach the database driver, which
raised: a 422 answered from outside the app's own layers, the exception escaping to the server
("Exception in ASGI application", recorded as a 500, keep-alive connection dropped). Answers
that went through the app's own layers carry `X-Request-ID` (`RequestLogMiddleware`); the
answer sent for an escaped exception does not, so the header is the "clean" check here.
"""

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import httpx
import pytest
import structlog
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.pagination import MAX_CURSOR_LENGTH
from tests.conftest import Actor

# Every list that takes a cursor (test_cursor_lists_are_all_covered keeps this complete).
# Every list that takes a cursor, tried with an admin (who may read each of them).
CURSOR_LISTS: Final = (
    "/v1/events",
    "/v1/webhook-endpoints",
    "/v1/spot-checks",
    "/v1/rectifications",
)
# Lists under a resource: their cursors are tested beside the resource.
COVERED_ELSEWHERE: Final = {
    "/v1/webhook-endpoints/{endpoint_id}/deliveries": "tests/api/test_webhooks*.py",
}
PROPERTY: Final = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
CRAFTED: Final = {"v": 1, "t": "0001-01-01T00:00:00+14:00", "i": str(uuid.UUID(int=0))}


def encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_json(value: Any) -> str:
    return encode(json.dumps(value).encode())


async def assert_invalid_cursor(
    client: httpx.AsyncClient, actor: Actor, cursor: str, path: str = "/v1/events"
) -> None:
    response = await client.get(path, params={"cursor": cursor}, headers=actor.headers)
    assert response.status_code == 400, (cursor, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/invalid-cursor")
    assert "x-request-id" in response.headers  # answered inside the app: nothing escaped


def test_cursor_lists_are_all_covered(app: FastAPI) -> None:
    """The lists that take a `cursor` (from the OpenAPI document) are the ones tested here."""
    taking = {
        path
        for path, operations in app.openapi()["paths"].items()
        for operation in operations.values()
        if any(p["name"] == "cursor" for p in operation.get("parameters", ()))
    }
    assert taking == set(CURSOR_LISTS) | set(COVERED_ELSEWHERE)


@pytest.mark.parametrize("path", CURSOR_LISTS)
async def test_a_time_outside_utc_is_a_clean_400(app: FastAPI, admin: Actor, path: str) -> None:
    """The probe's cursor: year 1 at +14:00 (and 9999-12-31 at -14:00) has no UTC instant.
    The app's exceptions are raised to the test here, and the access log records the 400."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        with structlog.testing.capture_logs() as logs:
            for moment in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
                cursor = encode_json({**CRAFTED, "t": moment})
                await assert_invalid_cursor(client, admin, cursor, path)
    assert [e["status"] for e in logs if e["event"] == "request"] == [400, 400]


async def test_an_over_long_cursor_is_400_not_422(client: httpx.AsyncClient, desk: Actor) -> None:
    await assert_invalid_cursor(client, desk, "A" * (MAX_CURSOR_LENGTH + 4))


async def test_a_real_cursor_still_pages(client: httpx.AsyncClient, desk: Actor) -> None:
    cursor = encode_json({**CRAFTED, "t": "2026-01-01T00:00:00+14:00"})
    response = await client.get("/v1/events", params={"cursor": cursor}, headers=desk.headers)
    assert response.status_code == 200


@PROPERTY
@given(raw=st.binary(max_size=(MAX_CURSOR_LENGTH * 3) // 4 + 30))
async def test_random_cursor_bytes_are_400(
    client: httpx.AsyncClient, desk: Actor, raw: bytes
) -> None:
    """base64url of any bytes (some longer than the bound) is a clean 400."""
    await assert_invalid_cursor(client, desk, encode(raw) or "A")


# Cursor text that is not base64url at all (NUL is refused for every parameter with 422;
# surrogates cannot be sent).
@PROPERTY
@given(
    text=st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"),
        min_size=1,
        max_size=600,
    )
)
async def test_random_cursor_text_is_400(client: httpx.AsyncClient, desk: Actor, text: str) -> None:
    await assert_invalid_cursor(client, desk, text)


JSON_SCALARS: Final = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**200)
    | st.floats()
    | st.text(max_size=40)
)
JSON_VALUES: Final = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@st.composite
def times_without_utc(draw: st.DrawFn) -> str:
    """A local time on the first or last day Python can represent, at an offset that moves
    its UTC instant out of range."""
    early = draw(st.booleans())
    minute_of_day = draw(st.integers(0, 14 * 60 - 1))
    past_edge = draw(st.integers(minute_of_day + 1, 14 * 60))  # minutes over the edge
    if early:
        zone = timezone(timedelta(minutes=past_edge))
        local = datetime(1, 1, 1, tzinfo=zone) + timedelta(minutes=minute_of_day)
    else:
        zone = timezone(-timedelta(minutes=past_edge))
        local = datetime(9999, 12, 31, 23, 59, tzinfo=zone) - timedelta(minutes=minute_of_day)
    return local.isoformat()


WRONG_VERSIONS: Final = JSON_VALUES.filter(lambda v: not (type(v) is int and v == 1))
WRONG_TIMES: Final = (
    times_without_utc()
    | st.datetimes().map(datetime.isoformat)  # no zone
    | st.dates().map(lambda d: d.isoformat())
    | st.text(max_size=40).filter(lambda s: not s[:4].isdigit())
    | JSON_VALUES.filter(lambda v: not isinstance(v, str))
)
WRONG_IDS: Final = (
    st.text(max_size=60).filter(lambda s: not _is_uuid(s))
    | st.uuids().map(lambda u: str(u)[:-1])
    | st.uuids().map(lambda u: f"{u}0")
    | JSON_VALUES.filter(lambda v: not isinstance(v, str))
)


@st.composite
def wrong_cursor_contents(draw: st.DrawFn) -> Any:
    """Well-formed encodings of wrong contents: another top-level type, or our object with one
    field wrong, missing, or an extra field."""
    valid = {"v": 1, "t": "2026-01-01T00:00:00+00:00", "i": str(draw(st.uuids()))}
    kind = draw(st.sampled_from(("top", "v", "t", "i", "missing", "extra")))
    if kind == "top":
        return draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict)))
    if kind == "missing":
        del valid[draw(st.sampled_from(sorted(valid)))]
        return valid
    if kind == "extra":
        extra = draw(st.text(max_size=5).filter(lambda k: k not in valid))
        return {**valid, extra: draw(JSON_VALUES)}
    wrong = {"v": WRONG_VERSIONS, "t": WRONG_TIMES, "i": WRONG_IDS}[kind]
    return {**valid, kind: draw(wrong)}


@PROPERTY
@given(contents=wrong_cursor_contents())
async def test_well_formed_encodings_of_wrong_contents_are_400(
    client: httpx.AsyncClient, desk: Actor, contents: Any
) -> None:
    await assert_invalid_cursor(client, desk, encode_json(contents))


@settings(PROPERTY, max_examples=100)
@given(
    moment=st.datetimes(
        timezones=st.builds(
            timezone,
            st.timedeltas(-timedelta(hours=23, minutes=59), timedelta(hours=23, minutes=59)),
        )
    ),
    ident=st.uuids(),
)
async def test_every_position_in_utc_range_is_accepted(
    client: httpx.AsyncClient, desk: Actor, moment: datetime, ident: uuid.UUID
) -> None:
    """Any aware time with a UTC instant is a position (200); only the others are refused."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        expected = 400
    else:
        expected = 200
    cursor = encode_json({"v": 1, "t": moment.isoformat(), "i": str(ident)})
    response = await client.get("/v1/events", params={"cursor": cursor}, headers=desk.headers)
    assert response.status_code == expected, (cursor, response.text)
