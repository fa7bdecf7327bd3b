"""Search and similar events in the bench (issue 16 item 4, issue 14 item 4), on the run's
database and data set (half of its events in Chinese: bench/dataset.py).

* chinese: `GET /v1/events?q=快递` (a two-character word inside longer runs; relevance order,
  the first page of 50);
* prefix: `GET /v1/events?q=fail` (an English prefix: "failed"), the same way;
* similar: `GET /v1/events/{id}/similar` for a fixed sample of classified events.

Each is the route's own code in this process (`reading.list_events`, `similar.similar_events`:
the statement, its parameters, the response models) on one asyncpg connection, as an intake
agent (sees every event) and as a handler (the visibility filter); the median and p99 over
the runs, and each statement's plan. Run alone: `python bench/search.py postgresql://...`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from run import Bench

TARGETS = {"chinese_ms_max": 20.0, "prefix_ms_max": 20.0, "similar_ms_max": 20.0}
CHINESE, PREFIX = "快递", "fail"
SAMPLE = 50  # events whose similar events are looked up, in turn


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _principals() -> dict[str, Any]:
    """The data set's first intake agent and an IT handler (bench/dataset.py DIRECTORY)."""
    import hashlib

    from app.core.auth import Principal
    from app.rules.vocabulary import Role

    def user(seed: str) -> uuid.UUID:
        return uuid.UUID(hashlib.md5(seed.encode()).hexdigest())

    return {
        "agent": Principal(
            user_id=user("bench-agent-1"),
            api_key_id=None,
            name="Intake agent 1",
            roles=frozenset({Role.INTAKE_AGENT}),
            department_id=user("bench-dept-CS"),
            department="CS",
            service_account=False,
        ),
        "handler": Principal(
            user_id=user("bench-handler-IT-2"),
            api_key_id=None,
            name="Handler IT 2",
            roles=frozenset({Role.HANDLER}),
            department_id=user("bench-dept-IT"),
            department="IT",
            service_account=False,
        ),
    }


async def _timed(runs: int, call: Callable[[int], Awaitable[Any]]) -> dict[str, Any]:
    for i in range(3):  # warm: prepared statements, caches
        await call(i)
    times: list[float] = []
    for i in range(runs):
        started = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(0.99 * (len(times) - 1))], 3),
        "runs": runs,
    }


async def _plan(connection: asyncpg.Connection, sql: str, args: list[Any]) -> str:
    rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
    return "\n".join(r[0] for r in rows)


async def measure(db_url: str, *, runs: int) -> dict[str, Any]:
    """The three lookups' latencies (and plans) for each principal."""
    from datetime import UTC, datetime

    from app.events import reading, similar
    from app.events.repository import EventFilter, list_query
    from app.rules.policy import default_policy

    policy = default_policy()
    connection = await asyncpg.connect(db_url)
    try:
        report: dict[str, Any] = {"targets": TARGETS, "sample": SAMPLE}
        for who, actor in _principals().items():
            # Classified events the caller sees: any for the agent, IT's for the IT handler.
            sample = [
                str(r["id"])
                for r in await connection.fetch(
                    "SELECT id FROM event WHERE category IS NOT NULL"
                    " AND ($2::varchar IS NULL OR lead_department = $2)"
                    " ORDER BY md5(id::text) LIMIT $1",
                    SAMPLE,
                    None if who == "agent" else actor.department,
                )
            ]
            now = datetime.now(UTC)
            for name, text in (("chinese", CHINESE), ("prefix", PREFIX)):
                flt = EventFilter(text=text, sort="relevance")

                async def page(
                    _: int, flt: EventFilter = flt, actor: Any = actor, now: Any = now
                ) -> Any:
                    return await reading.list_events(
                        connection, flt, actor=actor, cursor=None, limit=50, now=now
                    )

                result = await _timed(runs, page)
                found = len((await page(0)).items)
                sql, args = list_query(actor, flt, cursor=None, limit=50, now=now)
                result |= {"items": found, "plan": await _plan(connection, sql, args)}
                report[f"{name}_{who}"] = result
                _log(f"search: q={text} as {who}: {result['median_ms']} ms (median)")

            async def lookup(i: int, actor: Any = actor, sample: list[str] = sample) -> Any:
                return await similar.similar_events(
                    connection, sample[i % len(sample)], actor=actor, policy=policy, limit=10
                )

            result = await _timed(runs, lookup)
            result["items_first"] = len((await lookup(0)).items)
            report[f"similar_{who}"] = result
            _log(f"search: similar as {who}: {result['median_ms']} ms (median)")
    finally:
        await connection.close()
    report["passed"] = {
        name: all(
            report[f"{name}_{who}"]["median_ms"] <= TARGETS[f"{name}_ms_max"]
            for who in ("agent", "handler")
        )
        for name in ("chinese", "prefix", "similar")
    }
    return report


class Search:
    """The phase `bench/run.py` calls: `Search(bench).run()`."""

    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.a = bench.args

    def run(self) -> dict[str, Any]:
        return asyncio.run(measure(self.b.db_url, runs=30 if self.a.quick else 200))


def checks(rep: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    """The summary's check rows for the search phase."""
    if not rep:
        return []
    rows = []
    for name, what in (
        ("chinese", f"q={CHINESE} (two Chinese characters), first page by relevance"),
        ("prefix", f"q={PREFIX} (English prefix), first page by relevance"),
        ("similar", f"similar events of {rep['sample']} events in turn"),
    ):
        agent, handler = rep[f"{name}_agent"], rep[f"{name}_handler"]
        rows.append(
            (
                f"{what} = {agent['median_ms']} ms agent / {handler['median_ms']} ms handler "
                "(median)",
                f"<= {TARGETS[f'{name}_ms_max']} ms",
                rep["passed"][name],
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--plans", action="store_true", help="print the statements' plans")
    args = parser.parse_args()
    url = args.url.replace("postgresql+asyncpg://", "postgresql://")
    report = asyncio.run(measure(url, runs=args.runs))
    for value in report.values():
        plan = value.pop("plan", None) if isinstance(value, dict) else None
        if plan and args.plans:
            print(plan, end="\n\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
