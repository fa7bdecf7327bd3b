"""The delivery's connections (issue 13, items 2 and 3; app/webhooks/transport.py) against a
real receiver on 127.0.0.1: kept alive and reused, at most `WEBHOOK_ENDPOINT_CONCURRENCY` of
them to an endpoint at once, never reused once the receiver closes them or their answer was
not read to the end."""

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.runner.job import Piece
from app.webhooks.config import WebhookSettings, get_webhook_settings
from app.webhooks.delivery import EXCERPT_BYTES, Deliverer
from app.webhooks.transport import (
    MAX_HEAD_BYTES,
    Answer,
    ConnectError,
    Connections,
    ReadError,
    RemoteProtocolError,
)
from tests.api.flow import call
from tests.conftest import Actor, intake_body
from tests.webhook_receiver import Received, receiving

HOOKS = "/v1/webhook-endpoints"
JSON = [(b"content-type", b"application/json")]


@pytest.fixture
async def connections() -> AsyncIterator[Connections]:
    made = Connections(allow_private=True)
    yield made
    await made.aclose()


async def test_requests_one_after_another_share_one_kept_alive_connection(
    connections: Connections,
) -> None:
    with receiving() as receiver:
        for number in range(5):
            answer = await connections.post(
                receiver.url, [*JSON, (b"webhook-id", b"m%d" % number)], b"{}", timeout=5, limit=64
            )
            assert (answer.status, answer.head) == (200, b"ok")
        got = receiver.wait_for(5)
    assert [r.webhook_id for r in got] == [f"m{n}" for n in range(5)]
    assert len({r.client_port for r in got}) == 1


async def test_a_connection_the_receiver_closes_is_not_reused(connections: Connections) -> None:
    with receiving(answer=lambda _r: (200, {"Connection": "close"}, b"bye")) as receiver:
        for _ in range(3):
            answer = await connections.post(receiver.url, JSON, b"{}", timeout=5, limit=64)
            assert (answer.status, answer.head) == (200, b"bye")
        got = receiver.wait_for(3)
    assert len({r.client_port for r in got}) == 3


async def test_a_long_answer_is_read_only_to_the_excerpt_and_its_connection_dropped(
    connections: Connections,
) -> None:
    # Far longer than one read of the connection (httpcore reads up to 64 KiB at a time), so
    # stopping after the excerpt leaves most of it unread however the receiver's writes arrive.
    long = b"x" * (1024 * 1024 + 64 * EXCERPT_BYTES)

    def answer(received: Received) -> tuple[int, dict[str, str], bytes]:
        return 500, {"Retry-After": "7"}, long if received.number == 1 else b""

    with receiving(answer=answer) as receiver:
        first = await connections.post(receiver.url, JSON, b"{}", timeout=5, limit=EXCERPT_BYTES)
        second = await connections.post(receiver.url, JSON, b"{}", timeout=5, limit=EXCERPT_BYTES)
        got = receiver.wait_for(2)
    assert (first.status, first.retry_after) == (500, "7")
    assert EXCERPT_BYTES <= len(first.head) < len(long)
    assert (second.status, second.head) == (500, b"")
    assert got[0].client_port != got[1].client_port


async def test_no_redirect_is_followed(connections: Connections) -> None:
    with (
        receiving() as target,
        receiving(answer=lambda _r: (307, {"Location": target.url}, b"")) as moved,
    ):
        answer = await connections.post(moved.url, JSON, b"{}", timeout=5, limit=64)
        moved.wait_for(1)
    assert answer.status == 307
    assert target.received == []


async def test_a_piece_sends_over_at_most_the_endpoint_concurrency_and_the_next_reuses_them(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Actor,
    desk: Actor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Items 2 and 3: 2 at once to an endpoint (a slow receiver, so requests overlap), over
    kept-alive connections that the next piece reuses."""
    settings = WebhookSettings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True, WEBHOOK_ENDPOINT_CONCURRENCY=2)
    app.dependency_overrides[get_webhook_settings] = lambda: settings
    deliverer = Deliverer(settings, jitter=lambda _low, _high: 1.0)
    try:
        with receiving(delay=0.05) as receiver:
            created = await call(
                client, "POST", HOOKS, admin, json={"url": receiver.url}, expect=201
            )
            receiver.secrets.append(created["secret"])
            for batch in (6, 4):
                for _ in range(batch):
                    await call(client, "POST", "/v1/events", desk, json=intake_body(), expect=201)
                for work in (deliverer.fanout, deliverer.deliver):
                    async with session_maker() as session, session.begin():
                        await work(Piece(session=session, now=utcnow(), holder="test"))
            got = await asyncio.to_thread(receiver.wait_for, 10)
    finally:
        await deliverer.close()
    assert all(r.verified_by for r in got)
    first, second = got[:6], got[6:]
    assert len({r.client_port for r in first}) == 2
    assert {r.client_port for r in second} <= {r.client_port for r in first}


def test_the_workers_event_loop_uvloop_sends_and_keeps_alive_too() -> None:
    """`python -m app worker` and `serve` run on uvloop, whose transports are not asyncio's."""

    async def scenario() -> list[Received]:
        connections = Connections(allow_private=True)
        try:
            with receiving() as receiver:
                for number in range(3):
                    answer = await connections.post(
                        receiver.url,
                        [*JSON, (b"webhook-id", b"u%d" % number)],
                        b"{}",
                        timeout=5,
                        limit=64,
                    )
                    assert (answer.status, answer.head) == (200, b"ok")
                return await asyncio.to_thread(receiver.wait_for, 3)
        finally:
            await connections.aclose()

    got = uvloop.run(scenario())
    assert [r.webhook_id for r in got] == ["u0", "u1", "u2"]
    assert len({r.client_port for r in got}) == 1


@asynccontextmanager
async def _raw_server(
    answers: list[bytes], *, close: bool = False
) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A receiver that writes `answers[n]` as is (bytes on the wire) for the n-th request it
    reads on a connection, then closes that connection once its answers run out (or after
    each answer, with `close`); yields its URL and the raw requests it read."""
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for answer in answers:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(
                    next(
                        line.split(b":", 1)[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    )
                )
                requests.append(head + await reader.readexactly(length))
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/in", requests
    finally:
        server.close()


async def test_the_request_on_the_wire(connections: Connections) -> None:
    async with _raw_server([b"HTTP/1.1 204 No Content\r\n\r\n"]) as (url, requests):
        answer = await connections.post(
            url, [*JSON, (b"webhook-id", b"w1")], b'{"a":1}', timeout=5, limit=64
        )
    assert (answer.status, answer.head) == (204, b"")
    head, body = requests[0].split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /in HTTP/1.1"
    assert set(lines[1:]) == {
        b"host: " + url.split("/")[2].encode(),
        b"content-type: application/json",
        b"webhook-id: w1",
        b"content-length: 7",
    }
    assert body == b'{"a":1}'


@pytest.mark.parametrize(
    ("answer", "expected", "kept"),
    [
        # chunked, in pieces: reassembled, and the connection is kept for the next request
        (
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\nRetry-After: 30\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
            (500, "30", b"abcdefg"),
            True,
        ),
        # an informational answer first: the final one is what counts
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            (201, None, b"ok"),
            True,
        ),
        # a body without a length ends with the connection (the receiver closes it)
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
            (200, None, b"until the end"),
            False,
        ),
        # more than the one answer asked for: the first counts, the connection is not kept
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            b"HTTP/1.1 500 Unasked\r\nContent-Length: 5\r\n\r\nextra",
            (200, None, b"ok"),
            False,
        ),
        # a transfer coding other than chunked: the body too ends with the connection
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nConnection: close\r\n\r\n"
            b"to the end",
            (200, None, b"to the end"),
            False,
        ),
        # Retry-After in a chunked body's trailer is not the answer's
        (
            b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\nRetry-After: 5\r\n\r\n"
            b"2\r\nno\r\n0\r\nRetry-After: 99999\r\n\r\n",
            (503, "5", b"no"),
            True,
        ),
        # HTTP/1.0 without keep-alive: not kept, though the receiver waits for more
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", (200, None, b"ok"), False),
    ],
)
async def test_answers_as_llhttp_reads_them(
    connections: Connections,
    answer: bytes,
    expected: tuple[int, str | None, bytes],
    kept: bool,
) -> None:
    server_closes = b"Connection: close" in answer
    async with _raw_server([answer, answer], close=server_closes) as (url, requests):
        first = await connections.post(url, JSON, b"{}", timeout=5, limit=64)
        assert (first.status, first.retry_after, first.head) == expected
        assert sum(map(len, connections._idle.values())) == (1 if kept else 0)
        second = await connections.post(url, JSON, b"{}", timeout=5, limit=64)
        assert second == first
        assert len(requests) == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"SSH-2.0-OpenSSH_9.2\r\n", RemoteProtocolError),
        (b"", ReadError),  # closed without a word
        (b"HTTP/1.1 100 Continue\r\n\r\n", ReadError),  # closed after an informational answer
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", ReadError),
    ],
)
async def test_what_is_not_a_whole_answer_raises(
    connections: Connections, answer: bytes, error: type[Exception]
) -> None:
    async with _raw_server([answer]) as (url, _requests):
        with pytest.raises(error):
            await connections.post(url, JSON, b"{}", timeout=5, limit=64)
    assert not any(connections._idle.values())


@asynccontextmanager
async def _tls_server(
    tmp: Path,
    answer: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    *,
    abort: bool = False,
    ended: list[float] | None = None,
) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    """An https receiver on 127.0.0.1 that writes `answer` over TLS (then drops the
    connection without TLS's close_notify, with `abort`; `ended` gets the time its writing
    ended), with a certificate of its own for `localhost`; yields its URL and a client context
    that trusts that certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    trusting = ssl.create_default_context(cafile=str(tmp / "cert.pem"))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
        if ended is not None:
            ended.append(time.monotonic())
        if abort:
            writer.transport.abort()
        else:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_side)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://localhost:{port}/hook", trusting
    finally:
        server.close()


async def test_https_verifies_the_receivers_certificate(tmp_path: Path) -> None:
    """TLS with the host name checked: a certificate no trusted authority signed is refused;
    trusted, the request goes through."""
    async with _tls_server(tmp_path) as (url, trusting):
        default = Connections(allow_private=True)
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await default.post(url, JSON, b"{}", timeout=5, limit=64)
        trusted = Connections(allow_private=True, tls=trusting)
        answer = await trusted.post(url, JSON, b"{}", timeout=5, limit=64)
        await trusted.aclose()
    assert (answer.status, answer.head) == (200, b"ok")


async def test_endless_headers_are_refused_early(connections: Connections) -> None:
    """llhttp sets no limit on a header's size; the client does (MAX_HEAD_BYTES)."""
    flood = b"HTTP/1.1 200 OK\r\nX-Flood: " + b"a" * (4 * MAX_HEAD_BYTES)
    async with _raw_server([flood]) as (url, _requests):
        started = time.process_time()
        with pytest.raises(RemoteProtocolError, match="headers longer than"):
            await connections.post(url, JSON, b"{}", timeout=5, limit=64)
    assert time.process_time() - started < 1


async def test_a_kept_alive_connection_the_receiver_closed_meanwhile_is_retried_once_anew(
    connections: Connections,
) -> None:
    """The receiver closes an idle connection while the loop is too busy to notice: the next
    request on it gets no answer at all, and goes again on a new connection."""
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    async with _raw_server([ok], close=True) as (url, requests):
        first = await connections.post(url, JSON, b"{}", timeout=5, limit=64)
        time.sleep(0.2)  # noqa: ASYNC251 (blocks the loop on purpose: the close goes unseen)
        second = await connections.post(url, JSON, b"{}", timeout=5, limit=64)
    assert first == second == Answer(200, None, b"ok")
    assert len(requests) == 2


async def test_408_on_a_connection_that_was_idle_is_retried_once_anew(
    connections: Connections,
) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    gone = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    async with _raw_server([ok, gone]) as (url, requests):
        first = await connections.post(url, JSON, b"{}", timeout=5, limit=64)
        second = await connections.post(url, JSON, b"{}", timeout=5, limit=64)
    assert first == second == Answer(200, None, b"ok")
    assert len(requests) == 3  # the 408's and the one sent again


def test_on_uvloop_a_tls_body_that_ends_with_the_connection_is_read(tmp_path: Path) -> None:
    """uvloop reports a TLS peer's close without close_notify as the connection lost, with
    no end of file first: the body without a length still ends there."""

    async def scenario() -> Answer:
        async with _tls_server(
            tmp_path, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", abort=True
        ) as (url, trusting):
            connections = Connections(allow_private=True, tls=trusting)
            try:
                return await connections.post(url, JSON, b"{}", timeout=5, limit=64)
            finally:
                await connections.aclose()

    assert uvloop.run(scenario()) == Answer(200, None, b"until the end")


def test_on_uvloop_a_long_tls_answer_is_dropped_once_its_excerpt_is_read(tmp_path: Path) -> None:
    """Not closed politely (which on uvloop's TLS went on reading and decrypting the rest of
    the answer for its 30 s shutdown timeout): dropped, so the receiver's writes end at once."""
    long = b"HTTP/1.1 500 Oops\r\nContent-Length: 33554432\r\n\r\n" + b"x" * 33554432
    ended: list[float] = []

    async def scenario() -> tuple[Answer, float]:
        async with _tls_server(tmp_path, long, ended=ended) as (url, trusting):
            connections = Connections(allow_private=True, tls=trusting)
            answer = await connections.post(url, JSON, b"{}", timeout=10, limit=EXCERPT_BYTES)
            returned = time.monotonic()
            for _ in range(100):
                if ended:
                    break
                await asyncio.sleep(0.05)
            await connections.aclose()
            return answer, returned

    answer, returned = uvloop.run(scenario())
    assert (answer.status, len(answer.head)) == (500, EXCERPT_BYTES)
    assert ended, "the receiver was still writing after 5 s"
    assert ended[0] - returned < 5


async def test_a_closed_connection_fails_at_once_instead_of_waiting_for_the_timeout(
    connections: Connections,
) -> None:
    async with _raw_server([b"HTTP/1.1 204 No Content\r\n\r\n"]) as (url, _requests):
        connection = await connections._open(connections._parsed(url))
        connection.abort()
        await asyncio.sleep(0.05)  # the loop reports the connection lost before the request
        async with asyncio.timeout(1):
            with pytest.raises(ReadError):
                await connection.exchange(b"POST /in HTTP/1.1\r\n\r\n", 64)
