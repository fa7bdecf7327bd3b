"""No secret path segment is written to the log (issue 10, item 10, first half).

A survey link (`/v1/surveys/{token}`) is a bearer secret for the customer (R6.2). The access line
used to carry the raw path, token included. It now carries the matched route's template; a path
no route matched (or one answered before routing) is logged with its secret-looking segments
masked, and so is a `path` on any other line.
"""

import io
import json
import sys
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.logging import configure_logging, mask_path, route_path
from app.rules.vocabulary import Status
from tests.api import flow
from tests.api.flow import MakeActor, url
from tests.api.test_allow import SUPPORTED, concrete
from tests.conftest import build_app


class _KeptOpen(io.BytesIO):
    def close(self) -> None:
        """A logger cached while this was stderr may write again after the test: let it."""


def capture_stderr(monkeypatch: pytest.MonkeyPatch) -> io.BytesIO:
    """What the service really writes: the log goes to `sys.stderr.buffer` as it is when
    `configure_logging` runs (in `create_app`), so call this in the test, before the app."""
    buffer = _KeptOpen()
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(buffer, write_through=True))
    return buffer


def lines(buffer: io.BytesIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


async def test_a_survey_token_never_reaches_the_log(
    monkeypatch: pytest.MonkeyPatch,
    session_maker: async_sessionmaker[AsyncSession],
    make_actor: MakeActor,
) -> None:
    written = capture_stderr(monkeypatch)
    app = build_app(session_maker)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        cast = await flow.make_cast(make_actor, "IT")
        event = await flow.walk(
            client, cast, flow.BUSINESS_ISSUE, Status.FEEDBACK_GIVEN, satisfied=False
        )
        link = await client.post(url(event["id"], "/survey-link"), headers=cast.desk.headers)
        assert link.status_code == 201
        token = link.json()["token"]
        start = len(lines(written))
        survey = f"/v1/surveys/{token}"
        answers = [
            await client.get(survey),
            await client.post(survey, json={"score": 4}),
            await client.post(survey, json={"score": 5}),  # answered already: 409
            await client.put(survey),  # 405, after routing
            # A key that is too long: refused before routing (a keyed survey answer itself is
            # scoped to the link and routed, review of issue 10, item 10).
            await client.post(survey, json={"score": 5}, headers={"Idempotency-Key": "k" * 256}),
            await client.get(f"{survey}/more"),  # no route: 404
            await client.get(f"/v1/survey/{token}"),  # a typo: 404
            await client.get(f"/v1/events/{token}/notes", headers=cast.desk.headers),
        ]
    assert [a.status_code for a in answers] == [200, 200, 409, 405, 422, 404, 404, 404]
    assert token not in written.getvalue().decode()
    access = [e["path"] for e in lines(written)[start:] if e["event"] == "request"]
    assert access == [
        "/v1/surveys/{token}",
        "/v1/surveys/{token}",
        "/v1/surveys/{token}",
        "/v1/surveys/{token}",
        "/v1/surveys/{secret}",  # answered before routing (the key is refused)
        "/v1/surveys/{secret}/more",
        "/v1/survey/{secret}",
        "/v1/events/{event_id}/notes",
    ]


def test_a_path_on_any_other_line_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines other than the access line (a failed commit, an outage) name the raw path."""
    written = capture_stderr(monkeypatch)
    configure_logging("INFO")
    secret = "svy_" + "s3cr3t-t0ken_" * 3
    structlog.get_logger("other").error("commit_failed", path=f"/v1/surveys/{secret}")
    structlog.get_logger("other").warning("unavailable", path=f"/v1/events/cle_{secret[4:]}")
    assert secret[4:] not in written.getvalue().decode()
    assert [e["path"] for e in lines(written)] == ["/v1/surveys/{secret}", "/v1/events/{secret}"]


async def test_every_route_is_logged_as_its_template(client: httpx.AsyncClient) -> None:
    """The template from the scope is the full path of each route (a prefix given at include
    time would be missing from it). A 405 is enough: the route is matched, nothing runs."""
    with structlog.testing.capture_logs() as logs:
        for template in SUPPORTED:
            await client.request("OPTIONS", concrete(template))
    routed = [e["path"] for e in logs if e["event"] == "request"]
    assert routed == list(SUPPORTED)


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/v1/events/EV-2026-000001", "/v1/events/EV-2026-000001"),
        ("/v1/users/0192abcd-1234-7000-8000-1234567890ab", None),
        ("/v1/surveys/anything", "/v1/surveys/{secret}"),
        ("/v1/surveys/", "/v1/surveys/"),
        ("/x/cle_abcdefghijklmnopqrstuvwxyz/y", "/x/{secret}/y"),
    ],
)
def test_mask_path(path: str, logged: str | None) -> None:
    assert mask_path(path) == (logged or path)
    assert route_path({"path": path}) == (logged or path)
