"""A webhook receiver for the bench (issue 13): answers 200 at once, records when each
`webhook-id` arrived. Run: `python bench/webhook_receiver.py --port N`.

GET /stats -> {count, distinct, first, last}; GET /arrivals -> {webhook-id: first arrival, unix
seconds}; POST /reset forgets everything. Any other request is counted as a delivery.

An `asyncio.Protocol` over httptools (the parser uvicorn serves with) on uvloop, not an ASGI
app under uvicorn: the receiver shares the bench machine's two cores with the service, its
database and wrk, and what it spends is taken from the intake measured beside it, though a
real receiver runs elsewhere. Under uvicorn it took 0.066-0.075 ms of CPU a message
(`bench/inproc_webhooks.py`), about a sixth of what delivering one costs the service and its
database; this takes about a third of that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httptools
import procs
import uvloop

_arrivals: dict[str, float] = {}
_state = {"count": 0, "first": 0.0, "last": 0.0}
_EMPTY = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


def _json(status: int, value: object) -> bytes:
    body = json.dumps(value).encode()
    head = f"HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


def _answer(path: bytes, webhook_id: bytes) -> bytes:
    if path == b"/stats":
        return _json(200, {**_state, "distinct": len(_arrivals)})
    if path == b"/arrivals":
        return _json(200, _arrivals)
    if path == b"/reset":
        _arrivals.clear()
        _state.update(count=0, first=0.0, last=0.0)
        return _json(200, {})
    now = time.time()
    _arrivals.setdefault(webhook_id.decode(), now)
    _state["count"] += 1
    _state["first"] = _state["first"] or now
    _state["last"] = now
    return _EMPTY


class _Connection(asyncio.Protocol):
    """One client connection: requests one after another (HTTP/1.1 keep-alive)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.webhook_id = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"webhook-id":
            self.webhook_id = value

    def on_message_complete(self) -> None:
        answer = _answer(self.url.split(b"?", 1)[0], self.webhook_id)
        self.url, self.webhook_id = b"", b""
        if self.transport is not None:
            self.transport.write(answer)
            if not self.parser.should_keep_alive():
                self.transport.close()


def start(out: Path, env: dict[str, str]) -> tuple[procs.Started, str]:
    """This receiver in a process of its own on a free port: (process, base URL)."""
    port = procs.free_port()
    proc = procs.start(
        "webhook-receiver",
        [sys.executable, str(Path(__file__).resolve()), "--port", str(port)],
        env=env,
        cwd=out,
        log_path=out / "webhook-receiver.log",
    )
    base = f"http://127.0.0.1:{port}"
    procs.wait_http(base + "/stats", proc)
    return proc, base


async def _serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Connection, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(_serve(args.host, args.port))
