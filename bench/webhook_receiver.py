"""A webhook receiver for the bench (issue 13): answers 200 at once, records when each
`webhook-id` arrived. Run: `python -m uvicorn webhook_receiver:app --app-dir bench`.

GET /stats -> {count, distinct, first, last}; GET /arrivals -> {webhook-id: first arrival, unix
seconds}; POST /reset forgets everything. Any other request is counted as a delivery."""

from __future__ import annotations

import json
import time
from typing import Any

_arrivals: dict[str, float] = {}
_state = {"count": 0, "first": 0.0, "last": 0.0}


async def _send(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    path = scope["path"]
    if path == "/stats":
        stats = {**_state, "distinct": len(_arrivals)}
        await _send(send, 200, json.dumps(stats).encode())
        return
    if path == "/arrivals":
        await _send(send, 200, json.dumps(_arrivals).encode())
        return
    if path == "/reset":
        _arrivals.clear()
        _state.update(count=0, first=0.0, last=0.0)
        await _send(send, 200, b"{}")
        return
    now = time.time()
    webhook_id = ""
    for key, value in scope["headers"]:
        if key == b"webhook-id":
            webhook_id = value.decode()
            break
    _arrivals.setdefault(webhook_id, now)
    _state["count"] += 1
    _state["first"] = _state["first"] or now
    _state["last"] = now
    await _send(send, 200, b"")
