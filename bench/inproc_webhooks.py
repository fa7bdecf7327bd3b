"""Developer tool: the webhook jobs' CPU per message, in process (issue 13).

Starts bench/webhook_receiver.py, registers an endpoint, then in rounds queues `--batch`
outbox messages about as many events (as intakes write them) and runs the fan-out and the
delivery pieces on them in this process, as a runner does beside a steady intake (about 130
messages a poll at 650 intakes a second). Prints this process's CPU, the receiver's and the
database's per message (the database: every process in the tree of the postmaster whose pid
`--pg-pid` gives, else not measured); `--profile` adds a cProfile summary of this process.
`run.py` stays the measurement of record. Needs DATABASE_URL (migrated, with events, e.g.
`bench/dataset.py`) and BENCH_TOKEN (an admin key).

`python bench/inproc_webhooks.py [-n 10000] [--batch 130] [--pg-pid PID] [--profile]`
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import procs
import uvloop
import webhook_receiver
from inproc import print_profile
from sqlalchemy import text

from app.core.clock import utcnow
from app.core.db import uuid7
from app.main import create_app
from app.runner.job import Piece
from app.webhooks.config import WebhookSettings
from app.webhooks.delivery import Deliverer

BENCH = Path(__file__).resolve().parent

_QUEUE = text("""
INSERT INTO outbox_message (id, type, event_id, payload, created_at)
SELECT m.id, 'event.reported', m.event_id, CAST(m.payload AS jsonb), now()
FROM unnest(CAST(:ids AS uuid[]), CAST(:events AS uuid[]), CAST(:payloads AS text[]))
     AS m(id, event_id, payload)
""")


async def main(args: argparse.Namespace, receiver: procs.Started, base: str) -> None:
    app = create_app()
    settings = WebhookSettings(WEBHOOK_ALLOW_PRIVATE_TARGETS=True)
    deliverer = Deliverer(settings)
    try:
        async with (
            app.router.lifespan_context(app),  # type: ignore[attr-defined]
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://bench",
                headers={"authorization": f"Bearer {os.environ['BENCH_TOKEN']}"},
            ) as client,
        ):
            session_maker = app.state.db.session_maker
            async with session_maker() as session, session.begin():
                # a clean slate: endpoints of earlier runs point at receivers long gone
                for sql in (
                    "DELETE FROM webhook_endpoint",
                    "UPDATE outbox_message SET published_at = now() WHERE published_at IS NULL",
                ):
                    await session.execute(text(sql))
            made = await client.post("/v1/webhook-endpoints", json={"url": base + "/hook"})
            made.raise_for_status()
            async with session_maker() as session:
                events = list(
                    await session.scalars(
                        text("SELECT id FROM event ORDER BY md5(id::text) LIMIT :n"),
                        {"n": args.n + 400},
                    )
                )

            async def queue(chunk: list[uuid.UUID]) -> None:
                stamp = datetime.now(UTC).isoformat()
                async with session_maker() as session, session.begin():
                    await session.execute(
                        _QUEUE,
                        {
                            "ids": [uuid7() for _ in chunk],
                            "events": chunk,
                            "payloads": [
                                json.dumps(
                                    {
                                        "type": "event.reported",
                                        "timestamp": stamp,
                                        "data": {"id": str(e), "status": "reported"},
                                    }
                                )
                                for e in chunk
                            ],
                        },
                    )

            async def jobs() -> None:
                """The fan-out (which sends what it can at once), then the delivery of what
                it queued."""
                for work in (deliverer.fanout, deliverer.deliver):
                    while True:
                        async with session_maker() as session, session.begin():
                            piece = Piece(session=session, now=utcnow(), holder="inproc")
                            done = await work(piece)
                        for hook in piece.on_commit:
                            hook()
                        if done < args.batch or done == 0:
                            break

            async def delivered() -> int:
                async with session_maker() as session:
                    found = await session.scalar(
                        text("SELECT count(*) FROM webhook_delivery WHERE outcome = 'delivered'")
                    )
                return int(found or 0)

            pg_pids = [args.pg_pid] if args.pg_pid else []

            async def rounds(todo: list[uuid.UUID]) -> tuple[float, float, int]:
                """CPU of this process and of the database in the jobs only (queueing, which
                intake does anyway, left out); how many were delivered."""
                cpu = pg = 0.0
                before = await delivered()
                for start in range(0, len(todo), args.batch):
                    await queue(todo[start : start + args.batch])
                    pg0 = procs.cpu_seconds(pg_pids)
                    t0 = time.process_time()
                    await jobs()
                    cpu += time.process_time() - t0
                    pg += procs.cpu_delta(pg0, procs.cpu_seconds(pg_pids))
                return cpu, pg, await delivered() - before

            await rounds(events[:400])  # warm-up: connections, prepared statements
            rc0 = procs.cpu_seconds([receiver.pid])
            prof = cProfile.Profile(time.process_time) if args.profile else None
            if prof:
                prof.enable()
            wall0 = time.perf_counter()
            cpu, pg, sent = await rounds(events[400:])
            wall = time.perf_counter() - wall0
            if prof:
                prof.disable()
            rc = procs.cpu_delta(rc0, procs.cpu_seconds([receiver.pid]))
            n = len(events) - 400
            print(
                f"{sent} of {n} delivered in batches of {args.batch}: jobs {1e3 * cpu / n:.3f} ms "
                f"CPU a message here, receiver {1e3 * rc / n:.3f}, PostgreSQL "
                + (f"{1e3 * pg / n:.3f}" if pg_pids else "not measured")
                + " (the jobs' statements, queueing left out); "
                + f"{n / wall:.0f} a second with queueing"
            )
            if prof:
                print_profile(prof)
    finally:
        await deliverer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=130)
    parser.add_argument("--pg-pid", type=int, default=0)
    parser.add_argument("--profile", action="store_true")
    os.environ["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
    out = Path("/tmp/inproc-webhooks")
    out.mkdir(exist_ok=True)
    receiver, base = webhook_receiver.start(out, dict(os.environ))
    try:
        uvloop.run(main(parser.parse_args(), receiver, base))
    finally:
        receiver.stop()
