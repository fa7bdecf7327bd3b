"""The delivery client's connections (items 3 and 5): HTTP/1.1 over asyncio's transports,
answers read by httptools (llhttp, the parser uvicorn serves with).

* `Connections.post` sends one request on a kept-alive connection to the URL's origin, taken
  from that origin's idle connections (the last one given back first) or opened anew
  (`_open`: an address item 5 allows, then TLS verified against the host name for https),
  and gives it back once its answer is read to the end, unless the receiver closes it. A
  request is written whole in one call (head and body); a redirect is an answer like any
  other (never followed). How many requests an endpoint has in flight is bounded by the
  caller (`WEBHOOK_ENDPOINT_CONCURRENCY`).
* `_Connection` is the protocol of one connection. llhttp does the reading (status, headers,
  `Content-Length`, chunked bodies, bodies that end with the connection, answers that keep or
  end the connection); only the first `limit` bytes of a body are kept, and an answer longer
  than that is not read on: its connection is closed, not reused.
* Every new connection is checked (`ssrf.public_addresses`, unless
  `WEBHOOK_ALLOW_PRIVATE_TARGETS`) and made to the very address checked (item 5: at delivery
  time, not only at registration).

Why not httpx or httpcore: their per-request work (request and response models, header
validation, h11's state machine in Python) was about half of a delivery's CPU, and a delivery
shares the service's process with intake (bench/README.md).
"""

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from typing import Final, cast

import httptools
import httpx

from app.webhooks import ssrf
from app.webhooks.errors import UnsafeTarget

# Idle connections kept per origin beyond what is in use (more are closed when given back).
MAX_IDLE_PER_ORIGIN: Final = 64
# An answer's status line and headers (with any 1xx answers before it) may not exceed this:
# llhttp sets no limit, and an endless header costs CPU and memory (h11 refused 16 KiB).
MAX_HEAD_BYTES: Final = 64 * 1024
REQUEST_TIMEOUT: Final = 408
_TARGETS_KEPT: Final = 10_000


class TransportError(Exception):
    """A request that got no complete answer (the attempt's `error` names the class)."""


class UnsupportedProtocol(TransportError):
    """The URL is not http or https, or names no host."""


class ConnectError(TransportError):
    """No connection to the target (refused by item 5, unreachable, TLS failed)."""


class ReadError(TransportError):
    """The connection ended before the answer did."""


class RemoteProtocolError(TransportError):
    """The receiver's answer is not HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What a receiver answered: its status, `Retry-After`, and the start of its body (at
    least `limit` bytes of it when it is that long)."""

    status: int
    retry_after: str | None
    head: bytes


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: a request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._limit = 0
        self._headers_done = False
        self._delimited = False
        self._head_bytes = 0  # read before the final answer's headers were complete
        self.received = False  # any byte of an answer to the current request
        self.status = 0
        self.retry_after: str | None = None
        self.head = bytearray()
        self.complete = False  # the answer was read to its end
        self.keep_alive = False  # ... and the receiver keeps the connection open
        self.closed = False
        self.idle_since = 0.0

    # asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's or uvloop's (which does not derive from asyncio.Transport)
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.abort()  # nothing asked for (or enough read): the connection is not reused
            return
        self.received = True
        if not self._headers_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            self.abort()  # more than the one answer asked for (`on_message_begin`)
        except httptools.HttpParserUpgrade:
            self._fail(RemoteProtocolError("the receiver switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"not an HTTP/1.1 answer: {exc}"))
        else:
            if not self._headers_done and self._head_bytes > MAX_HEAD_BYTES:
                self._fail(RemoteProtocolError(f"headers longer than {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        self._ended(ReadError("the receiver closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:  # reset, or an error: whatever was read is not a whole answer
            self.closed = True
            self._fail(ReadError(str(exc) or type(exc).__name__))
        else:  # uvloop's TLS reports a close without close_notify so, with no eof_received
            self._ended(ReadError("the connection was closed"))

    def _ended(self, error: ReadError) -> None:
        """The receiver closed the connection: the end of a body without a length, else
        `error` for an answer still awaited."""
        self.closed = True
        if self._headers_done and not self.complete and not self._delimited:
            self.complete = True
            self._wake()
        else:
            self._fail(error)

    # httptools' callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:  # also after a 1xx answer
        if self.complete:
            raise RemoteProtocolError("an answer nobody asked for")  # stops the parser
        self._headers_done = self._delimited = False
        self.retry_after = None
        self.head.clear()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._headers_done:
            return  # a chunked body's trailer fields: not the answer's headers
        name = name.lower()
        if name == b"retry-after":
            self.retry_after = value.decode("latin-1")
        elif name == b"content-length" or (
            name == b"transfer-encoding" and value.rstrip().lower().endswith(b"chunked")
        ):
            self._delimited = True  # the body does not end with the connection (RFC 9112 6.3)

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        room = self._limit - len(self.head)
        if room > 0:
            self.head += body[:room]
        if len(self.head) >= self._limit:
            self._wake()  # enough; unless the answer also ends here, the rest is not read

    def on_message_complete(self) -> None:
        if self.status < 200:
            self._headers_done = False  # informational: the answer follows
            return
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()

    # ----------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.abort()

    async def exchange(self, request: bytes, limit: int) -> Answer:
        """Write `request` whole, wait for its answer (to its end, or its first `limit`
        bytes of body)."""
        assert self._transport is not None
        if self.closed:  # no answer could come: fail now instead of at the timeout
            raise ReadError("the connection was closed")
        self._limit = limit
        self._headers_done = self._delimited = self.complete = self.keep_alive = False
        self.received = False
        self._head_bytes = 0
        self.status = 0
        self.retry_after = None
        self.head.clear()
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        await self._waiter
        return Answer(self.status, self.retry_after, bytes(self.head))

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed

    def close(self) -> None:
        """Close an idle connection (nothing left to read or write)."""
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop a connection at once: what is unread or unsent is discarded (a TLS close
        would otherwise go on reading the rest of a long answer, or wait for a write that a
        stuck receiver never takes)."""
        self.closed = True
        if self._transport is not None:
            self._transport.abort()


@dataclass(frozen=True, slots=True)
class _Target:
    key: tuple[str, str, int]  # scheme, host, port: the origin
    host: str  # to resolve (and to verify a certificate against)
    port: int
    tls: bool
    start: bytes  # the request line and the Host header


def _target(url: str) -> _Target:
    """`url` parsed once (httpx's parser: IDNA host, normalized port, percent-encoded path)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnsupportedProtocol(f"not a URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise UnsupportedProtocol(f"unsupported URL scheme {parsed.scheme!r}")
    if not parsed.raw_host:
        raise UnsupportedProtocol("the URL has no host")
    tls = parsed.scheme == "https"
    port = parsed.port or (443 if tls else 80)
    host = parsed.raw_host.decode("ascii")
    start = b"POST %s HTTP/1.1\r\nhost: %s\r\n" % (parsed.raw_path, parsed.netloc)
    return _Target(key=(parsed.scheme, host, port), host=host, port=port, tls=tls, start=start)


class Connections:
    """Kept-alive HTTP/1.1 connections to webhook receivers, per origin (see the module)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        keepalive_expiry: float = 30.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: the certificates https targets are verified against (by default httpx's:
        certifi's authorities, host names checked)."""
        self.allow_private = allow_private
        self.keepalive_expiry = keepalive_expiry
        self._ssl = tls
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False
        self._targets: dict[str, _Target] = {}

    def _parsed(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) >= _TARGETS_KEPT:
                self._targets.clear()
            target = self._targets[url] = _target(url)
        return target

    def _fresh(self, connection: _Connection) -> bool:
        return (
            not connection.closed
            and time.monotonic() - connection.idle_since < self.keepalive_expiry
        )

    async def _checkout(self, target: _Target) -> tuple[_Connection, bool]:
        """An idle connection to the target's origin still open (and True), else a new one
        (and False)."""
        idle = self._idle.get(target.key)
        while idle:
            connection = idle.pop()
            if self._fresh(connection):
                return connection, True
            connection.close()
        return await self._open(target), False

    async def _open(self, target: _Target) -> _Connection:
        """A new connection, to an address item 5 allows, TLS verified against the host."""
        if self.allow_private:
            addresses = [target.host]
        else:
            try:
                addresses = await ssrf.public_addresses(target.host, target.port)
            except UnsafeTarget as exc:
                raise ConnectError(f"refused: {exc.detail}") from exc
        loop = asyncio.get_running_loop()
        error = ConnectError(f"cannot connect to {target.host}")
        for address in addresses:
            try:
                _transport, connection = await loop.create_connection(
                    _Connection,
                    address,
                    target.port,
                    ssl=self._tls() if target.tls else None,
                    server_hostname=target.host if target.tls else None,
                )
            except OSError as exc:  # ssl.SSLError included
                error = ConnectError(str(exc) or type(exc).__name__)
                continue
            return connection
        raise error

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=False)
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    def _checkin(self, target: _Target, connection: _Connection) -> None:
        if not connection.reusable:
            connection.abort()  # closed by the receiver, or its answer not read to the end
            return
        idle = self._idle.setdefault(target.key, [])
        if len(idle) < MAX_IDLE_PER_ORIGIN and not self._closed:
            connection.idle_since = time.monotonic()
            idle.append(connection)
        else:
            connection.close()

    async def post(
        self,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 (the whole request's, connecting included)
        limit: int,
    ) -> Answer:
        """POST `body` to `url` with `headers` (Host and Content-Length are added; names and
        values are the caller's, never a receiver's): the status, `Retry-After` and the first
        `limit` bytes of the answer. Raises `TransportError`s and `TimeoutError`; the
        connection is then closed, not reused."""
        target = self._parsed(url)
        request = b"".join(
            (
                target.start,
                *(b"%s: %s\r\n" % pair for pair in headers),
                b"content-length: %d\r\n\r\n" % len(body),
                body,
            )
        )
        async with asyncio.timeout(timeout):
            connection, reused = await self._checkout(target)
            try:
                answer = await connection.exchange(request, limit)
            except ReadError:
                if not (reused and not connection.received):
                    raise
                answer = None  # the receiver had closed the idle connection meanwhile
            except BaseException:
                connection.abort()  # failed or cancelled in use: never reused
                raise
            if answer is None or (reused and answer.status == REQUEST_TIMEOUT):
                # Once more on a new connection (RFC 9112 section 9.3.1: nothing of an answer
                # came, or 408 closed a connection that had been idle). Should the receiver
                # have taken the first one after all, it gets the message twice with the same
                # webhook-id, as at-least-once delivery allows.
                connection.abort()
                connection = await self._open(target)
                try:
                    answer = await connection.exchange(request, limit)
                except BaseException:
                    connection.abort()
                    raise
        self._checkin(target, connection)
        return answer

    async def sweep(self) -> None:
        """Close the idle connections past their keep-alive or closed by the receiver."""
        for key, idle in list(self._idle.items()):
            keep = []
            for connection in idle:
                if self._fresh(connection):
                    keep.append(connection)
                else:
                    connection.close()
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    async def aclose(self) -> None:
        """Close the idle connections; one in use now is closed when its request ends."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                with contextlib.suppress(Exception):
                    connection.close()
