"""The delivery client's connections (items 3 and 5): httpx on httpcore's connection pool,
with a network backend of our own.

* `GuardedBackend.connect_tcp` resolves the host, refuses it unless every address is public
  (`ssrf.public_addresses`, unless `WEBHOOK_ALLOW_PRIVATE_TARGETS`), and connects to a checked
  address; TLS still verifies the certificate against the host name.
* `_Stream` is a plain asyncio stream (no anyio layer) that sends a request's head and body
  in one write, when the response is first read: one system call per request instead of two
  (on loopback the sender's call also does the receiver's work; measured 20 % of a
  delivery's CPU, bench/README.md).
"""

import asyncio
import contextlib
import ssl
from collections.abc import Iterable
from typing import Any

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


def transport(*, allow_private: bool, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport on a connection pool with `GuardedBackend`. httpx takes no network
    backend, so the pool it builds is replaced by an identical one with ours (httpx 0.28)."""
    made = httpx.AsyncHTTPTransport(limits=limits, trust_env=False, retries=0)
    made._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        retries=0,
        network_backend=GuardedBackend(allow_private=allow_private),
    )
    return made
