"""A real webhook receiver on 127.0.0.1 for the webhook tests (issue 13): uvicorn in a thread
of the test process, serving a plain ASGI app that verifies every request with
`standardwebhooks.Webhook(secret).verify` against each secret it knows, records it, and
answers what the test's `answer` says (200 by default)."""

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError

Answer = Callable[["Received"], tuple[int, dict[str, str], bytes]]


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and which of the known secrets verified it."""

    number: int  # 1 for the first request the receiver got
    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    verified_by: tuple[str, ...]
    headers: dict[str, str] = field(repr=False)
    client_port: int = 0  # the sender's port: one per connection it opened

    @property
    def json(self) -> Any:
        import json

        return json.loads(self.body)

    @property
    def type(self) -> str:
        kind: str = self.json["type"]
        return kind


def _ok(_request: Received) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, b"ok"


class Receiver:
    """Records what it receives; `secrets` may change while it runs (rotation)."""

    def __init__(
        self, secrets: list[str] | None = None, answer: Answer = _ok, delay: float = 0.0
    ) -> None:
        self.secrets = list(secrets or [])
        self.answer = answer
        self.delay = delay  # seconds before each answer (a slow receiver)
        self.received: list[Received] = []
        self.in_flight = 0  # requests being answered now
        self.most_in_flight = 0  # the most at once so far
        self._lock = threading.Condition()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
            proxy_headers=False,
            ws="none",
            access_log=False,
            http="httptools",
            loop="asyncio",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True, name="webhook-receiver")

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the receiver did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        verified = []
        for secret in list(self.secrets):
            try:
                Webhook(secret).verify(body, headers, json_parse=False)
            except WebhookVerificationError:
                continue
            verified.append(secret)
        with self._lock:
            got = Received(
                number=len(self.received) + 1,
                webhook_id=headers.get("webhook-id", ""),
                timestamp=headers.get("webhook-timestamp", ""),
                signature=headers.get("webhook-signature", ""),
                body=body,
                verified_by=tuple(verified),
                headers=headers,
                client_port=(scope.get("client") or ("", 0))[1],
            )
            self.received.append(got)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._lock.notify_all()
        try:
            await self._answer(got, send)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, got: Received, send: Any) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        status, extra, content = self.answer(got)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(content)).encode()),
                    *((k.encode(), v.encode()) for k, v in extra.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        """Block until at least `count` requests arrived (AssertionError after `timeout`)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} requests arrived")
            return list(self.received)


@contextmanager
def receiving(
    secrets: list[str] | None = None, answer: Answer = _ok, delay: float = 0.0
) -> Iterator[Receiver]:
    receiver = Receiver(secrets, answer, delay)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
