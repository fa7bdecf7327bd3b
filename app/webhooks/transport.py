"""The delivery client's connections (items 3 and 5): HTTP/1.1 over httpcore (h11), with a
network backend of our own.

* `Connections.post` sends one request on a kept-alive `httpcore.AsyncHTTP11Connection` to
  the URL's origin, taken from that origin's idle connections (the last one returned first)
  or opened anew (`GuardedBackend`, then TLS for https), and gives it back once the answer
  is read. httpcore and h11 speak HTTP (and never follow a redirect); what is ours is only
  which idle connection to reuse. Neither httpx's client nor httpcore's pool is in the way:
  their per-request work (httpx's request and response models, cookies, URL merging; the
  pool's scan of every connection, twice per request) was about 60 % of a delivery's HTTP
  CPU (bench/README.md). How many requests an endpoint has in flight is bounded by the
  caller (`WEBHOOK_ENDPOINT_CONCURRENCY`).
* `GuardedBackend.connect_tcp` resolves the host, refuses it unless every address is public
  (`ssrf.public_addresses`, unless `WEBHOOK_ALLOW_PRIVATE_TARGETS`), and connects to a checked
  address; TLS still verifies the certificate against the host name. Every new connection is
  checked (item 5: at delivery time, not only at registration).
* `_Stream` is a plain asyncio stream (no anyio layer) that sends a request's head and body
  in one write, when the response is first read: one system call per request instead of two
  (on loopback the sender's call also does the receiver's work; measured 20 % of a
  delivery's CPU, bench/README.md).
"""

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpcore
import httpx

from app.webhooks import ssrf
from app.webhooks.errors import UnsafeTarget


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._pending: list[bytes] = []

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ARG002, ASYNC109
        if buffer:
            self._pending.append(buffer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                if self._pending:
                    self._writer.write(b"".join(self._pending))
                    self._pending.clear()
                    await self._writer.drain()
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout("no answer in time") from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self._writer.wait_closed()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            await self.aclose()
            raise httpcore.ConnectTimeout("TLS handshake timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            await self.aclose()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # an idle kept-alive connection the server has closed
            return self._reader.at_eof() or self._writer.is_closing()
        names = {"client_addr": "sockname", "server_addr": "peername"}
        return self._writer.get_extra_info(names.get(info, info))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connections only to addresses item 5 allows, over `_Stream`."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self.allow_private:
            addresses = [host]
        else:
            try:
                addresses = await ssrf.public_addresses(host, port)
            except UnsafeTarget as exc:
                raise httpcore.ConnectError(f"refused: {exc.detail}") from exc
        error: Exception = httpcore.ConnectError(f"cannot connect to {host}")
        for address in addresses:
            try:
                async with asyncio.timeout(timeout):
                    reader, writer = await asyncio.open_connection(
                        address, port, local_addr=(local_address, 0) if local_address else None
                    )
            except TimeoutError:
                error = httpcore.ConnectTimeout(f"connecting to {host} timed out")
                continue
            except OSError as exc:
                error = httpcore.ConnectError(str(exc) or type(exc).__name__)
                continue
            sock = writer.get_extra_info("socket")
            for option in socket_options or ():
                sock.setsockopt(*option)
            return _Stream(reader, writer)
        raise error

    async def connect_unix_socket(
        self,
        path: str,  # noqa: ARG002
        timeout: float | None = None,  # noqa: ARG002, ASYNC109
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused: webhooks are not sent over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# Idle connections kept per origin beyond what is in use (more are closed when given back).
MAX_IDLE_PER_ORIGIN: Final = 64
_TARGETS_KEPT: Final = 10_000


@dataclass(frozen=True, slots=True)
class Answer:
    """What a receiver answered: its status, `Retry-After`, and the start of its body (at
    least `limit` bytes of it when it is that long)."""

    status: int
    retry_after: str | None
    head: bytes


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpcore.URL
    origin: httpcore.Origin
    key: tuple[bytes, bytes, int]
    host: bytes  # the Host header: host, and the port unless the scheme's default


def _target(url: str) -> _Target:
    """`url` parsed once (httpx's parser: IDNA host, normalized port and path)."""
    parsed = httpx.URL(url)
    scheme = parsed.raw_scheme
    if scheme not in (b"http", b"https"):
        raise httpcore.UnsupportedProtocol(f"unsupported URL scheme {parsed.scheme!r}")
    if not parsed.raw_host:
        raise httpcore.UnsupportedProtocol("the URL has no host")
    port = parsed.port or (443 if scheme == b"https" else 80)
    origin = httpcore.Origin(scheme, parsed.raw_host, port)
    return _Target(
        url=httpcore.URL(scheme=scheme, host=parsed.raw_host, port=port, target=parsed.raw_path),
        origin=origin,
        key=(scheme, parsed.raw_host, port),
        host=parsed.netloc,
    )


class Connections:
    """Kept-alive HTTP/1.1 connections to webhook receivers, per origin (see the module)."""

    def __init__(self, *, allow_private: bool, keepalive_expiry: float = 30.0) -> None:
        self.keepalive_expiry = keepalive_expiry
        self._backend = GuardedBackend(allow_private=allow_private)
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTP11Connection]] = {}
        self._targets: dict[str, _Target] = {}

    def _parsed(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) >= _TARGETS_KEPT:
                self._targets.clear()
            target = self._targets[url] = _target(url)
        return target

    async def _checkout(
        self,
        target: _Target,
        timeout: float,  # noqa: ASYNC109 (the connect's and TLS handshake's)
    ) -> httpcore.AsyncHTTP11Connection:
        """An idle connection to the target's origin still open, else a new one: connected to
        an address item 5 allows, TLS verified against the host name for https."""
        idle = self._idle.get(target.key)
        while idle:
            connection = idle.pop()
            if connection.is_available() and not connection.has_expired():
                return connection
            await _close(connection)
        origin = target.origin
        host = origin.host.decode("ascii")
        stream = await self._backend.connect_tcp(host, origin.port, timeout=timeout)
        if origin.scheme == b"https":
            try:
                stream = await stream.start_tls(self._tls(), server_hostname=host, timeout=timeout)
            except BaseException:
                with contextlib.suppress(Exception):
                    await stream.aclose()
                raise
        return httpcore.AsyncHTTP11Connection(
            origin, stream, keepalive_expiry=self.keepalive_expiry
        )

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(trust_env=False)
            self._ssl.set_alpn_protocols(["http/1.1"])
        return self._ssl

    async def _checkin(self, target: _Target, connection: httpcore.AsyncHTTP11Connection) -> None:
        idle = self._idle.setdefault(target.key, [])
        if connection.is_idle() and len(idle) < MAX_IDLE_PER_ORIGIN:
            idle.append(connection)
        else:
            await _close(connection)

    async def post(
        self,
        url: str,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes,
        *,
        timeout: float,  # noqa: ASYNC109 (httpcore's timeouts, per phase)
        limit: int,
    ) -> Answer:
        """POST `body` to `url` with `headers` (Host and Content-Length are added): the
        status, `Retry-After` and the first `limit` bytes or so of the answer. Raises
        httpcore's errors (connect, read, protocol) and whatever cancels it; the connection
        is then closed, not reused."""
        target = self._parsed(url)
        request = httpcore.Request(
            b"POST",
            target.url,
            headers=[
                (b"host", target.host),
                *headers,
                (b"content-length", str(len(body)).encode()),
            ],
            content=body,
            extensions={
                "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
            },
        )
        connection = await self._checkout(target, timeout)
        try:
            response = await connection.handle_async_request(request)
            try:
                retry_after = None
                for name, value in response.headers:
                    if name.lower() == b"retry-after":
                        retry_after = value.decode("latin-1")
                        break
                head = b""
                stream = response.stream
                assert isinstance(stream, AsyncIterable)  # an async connection's
                async for chunk in stream:
                    head += chunk
                    if len(head) >= limit:
                        break  # the rest is not read: the connection is closed, not reused
            finally:
                await response.aclose()
        except BaseException:
            await _close(connection)  # in use, failed or cancelled: never reused
            raise
        await self._checkin(target, connection)
        return Answer(response.status, retry_after, head)

    async def sweep(self) -> None:
        """Close the idle connections past their keep-alive or closed by the receiver."""
        for key, idle in list(self._idle.items()):
            keep = []
            for connection in idle:
                if connection.has_expired() or not connection.is_available():
                    await _close(connection)
                else:
                    keep.append(connection)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    async def aclose(self) -> None:
        """Close the idle connections (one in use is closed by its request when it ends)."""
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await _close(connection)


async def _close(connection: httpcore.AsyncHTTP11Connection) -> None:
    with contextlib.suppress(Exception):
        await connection.aclose()
