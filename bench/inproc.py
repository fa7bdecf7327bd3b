"""Developer tool: CPU per request of one endpoint, in process, without HTTP or a load generator.

Drives the ASGI app directly (N sequential requests, C concurrent) and prints CPU µs per
request, optionally with a cProfile summary. Use it to attribute app CPU between changes;
`run.py` stays the measurement of record. Needs DATABASE_URL (migrated) and BENCH_TOKEN.
`python bench/inproc.py intake|get|list [-n 3000] [-c 16] [--profile]`
"""

import argparse
import asyncio
import cProfile
import itertools
import json
import os
import pstats
import time
from typing import Any

import uvloop

from app.main import create_app

BODY = {
    "title": "Printer on floor 3 is jammed again",
    "description": "Paper jam after every second job; the queue is stuck for the whole floor.",
    "channel": "hotline",
    "reporter": {"name": "Ada Example", "email": "ada@example.com"},
    "involved_departments": ["IT"],
}


async def call(app: Any, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def print_profile(prof: cProfile.Profile) -> None:
    """The profile by cumulative and own CPU time; with BENCH_CALLERS (a regular expression),
    also who called the functions it matches, with BENCH_CALLEES whom they called."""
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(50)
    stats.sort_stats("tottime").print_stats(35)
    if os.environ.get("BENCH_CALLERS"):
        stats.print_callers(os.environ["BENCH_CALLERS"])
    if os.environ.get("BENCH_CALLEES"):
        stats.sort_stats("cumulative").print_callees(os.environ["BENCH_CALLEES"])


async def main(args: argparse.Namespace) -> None:
    app = create_app()
    token = os.environ["BENCH_TOKEN"]
    counter = itertools.count()
    body = json.dumps(BODY).encode()
    ids: list[str] = []

    async def one() -> None:
        n = next(counter)
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        if args.endpoint == "intake":
            headers["idempotency-key"] = f"inproc-{time.time_ns()}-{n}"
            status = await call(app, "POST", "/v1/events", headers, body)
        elif args.endpoint == "list":
            status = await call(app, "GET", "/v1/events", headers, b"")
        else:
            status = await call(app, "GET", f"/v1/events/{ids[n % len(ids)]}", headers, b"")
        if status >= 300:
            raise RuntimeError(f"status {status}")

    async with app.router.lifespan_context(app):
        if args.endpoint == "get":
            sm = app.state.db.session_maker
            from sqlalchemy import text

            async with sm() as s:
                ids = [str(r) for r in (await s.scalars(text("SELECT id FROM event LIMIT 1000")))]
        auth = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        dept = json.dumps({"code": "IT", "name": "IT"}).encode()
        await call(app, "POST", "/v1/departments", auth, dept)  # 201, or 409 when it exists
        sem = asyncio.Semaphore(args.c)

        async def run(n: int) -> None:
            async def guarded() -> None:
                async with sem:
                    await one()

            await asyncio.gather(*(guarded() for _ in range(n)))

        await run(200)  # warm-up
        prof = cProfile.Profile(time.process_time) if args.profile else None
        t0, w0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        await run(args.n)
        if prof:
            prof.disable()
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        print(
            f"{args.endpoint}: {1e6 * cpu / args.n:.0f} µs CPU/request, {args.n / wall:.0f} req/s"
        )
        if prof:
            print_profile(prof)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("endpoint", choices=["intake", "get", "list"])
    p.add_argument("-n", type=int, default=3000)
    p.add_argument("-c", type=int, default=16)
    p.add_argument("--profile", action="store_true")
    uvloop.run(main(p.parse_args()))
