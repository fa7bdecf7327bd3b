"""Search and similar events in the bench (issue 16 item 4, issue 14 item 4), on the run's
database and data set (half of its events in Chinese: bench/dataset.py).

* chinese: `GET /v1/events?q=快递` (a two-character word inside longer runs, in 7 % of the
  events; relevance order, the first page of 50);
* prefix: `GET /v1/events?q=fail` (an English prefix: "failed", 5 %), the same way;
* rare: `q=4242`, the prefix of the reference numbers 4242, 42420-42429 and 424200-424299
  (111 events, 0.01 %), and absent: `q=qqxz` (no word starts so), the same way;
* similar: `GET /v1/events/{id}/similar` for a fixed sample of classified events.

Each is the route's own code in this process (`reading.list_events`, `similar.similar_events`:
the statements, their parameters, the response models) on one asyncpg connection set up as
the service's (JIT off; a list or a similar-events lookup in a read-only transaction planned
with its values, as `Database.report_connection`), as an intake agent (sees every event) and
as a handler (the visibility filter); the median and p99 over the runs, and the plans of the
statements a page read. `--compare` also times, in turn with it, the one statement that ranked
the newest 200 matches before `hot.list_visible` (`list_query`). Run alone:
`python bench/search.py postgresql://...`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from run import Bench

TARGETS = {
    "chinese_ms_max": 20.0,
    "prefix_ms_max": 20.0,
    "rare_ms_max": 20.0,
    "absent_ms_max": 20.0,
    "similar_ms_max": 20.0,
}
CHINESE, PREFIX, RARE, ABSENT = "快递", "fail", "4242", "qqxz"
QUERIES = (("chinese", CHINESE), ("prefix", PREFIX), ("rare", RARE), ("absent", ABSENT))
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


async def _timed(
    runs: int,
    call: Callable[[int], Awaitable[Any]],
    other: Callable[[int], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """The median and p99 of `call`; with `other`, its median too, each run right after."""
    for i in range(3):  # warm: prepared statements, caches
        await call(i)
        if other is not None:
            await other(i)
    times: list[float] = []
    others: list[float] = []
    for i in range(runs):
        started = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - started) * 1000)
        if other is not None:
            started = time.perf_counter()
            await other(i)
            others.append((time.perf_counter() - started) * 1000)
    times.sort()
    result = {
        "median_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(0.99 * (len(times) - 1))], 3),
        "runs": runs,
    }
    if others:
        result["before_ms"] = round(statistics.median(others), 3)
    return result


@asynccontextmanager
async def _listing(connection: asyncpg.Connection) -> AsyncIterator[None]:
    """As `Database.report_connection`: a read-only transaction with custom plans."""
    from app.core.db import CUSTOM_PLANS

    async with connection.transaction(readonly=True):
        await connection.execute(f"SET LOCAL plan_cache_mode = {CUSTOM_PLANS}")
        yield


@contextmanager
def _one_statement() -> Iterator[None]:
    """The lists read as before `hot.list_visible`: relevance in one statement, ranking the
    newest 200 of every match (`list_query`)."""
    from app.events import repository
    from app.events.repository import decode, list_query

    async def list_visible(connection: Any, principal: Any, flt: Any, **kw: Any) -> Any:
        sql, args = list_query(principal, flt, **kw)
        return [decode(r) for r in await connection.fetch(sql, *args)]

    reader = repository.list_visible
    repository.list_visible = list_visible
    try:
        yield
    finally:
        repository.list_visible = reader


async def _plans(connection: asyncpg.Connection, statements: list[tuple[str, list[Any]]]) -> str:
    plans = []
    async with _listing(connection):
        for sql, args in statements:
            rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
            plans.append("\n".join(r[0] for r in rows))
    return "\n\n".join(plans)


async def _searches(
    connection: asyncpg.Connection, actor: Any, runs: int, compare: bool
) -> dict[str, Any]:
    """The four searches' latencies as `actor`, the plans of a page's statements and, with
    `compare`, the one statement of before timed in turn with them."""
    from datetime import UTC, datetime

    from app.events import reading
    from app.events.repository import EventFilter, hot

    now, report = datetime.now(UTC), {}
    for name, text in QUERIES:
        flt = EventFilter(text=text, sort="relevance")

        async def page(_: int, flt: EventFilter = flt) -> Any:
            async with _listing(connection):
                return await reading.list_events(
                    connection, flt, actor=actor, cursor=None, limit=50, now=now
                )

        async def before(_: int, flt: EventFilter = flt) -> Any:
            # The same route code with the reader of before: one statement.
            with _one_statement():
                async with _listing(connection):
                    return await reading.list_events(
                        connection, flt, actor=actor, cursor=None, limit=50, now=now
                    )

        result = await _timed(runs, page, before if compare else None)
        trace: list[tuple[str, list[Any]]] = []
        async with _listing(connection):
            rows = await hot.list_visible(
                connection, actor, flt, cursor=None, limit=50, now=now, trace=trace
            )
        if compare:
            expected = [item.id for item in (await before(0)).items]
            result["same_as_before"] = [r["id"] for r in rows[:50]] == expected
        result |= {"items": len((await page(0)).items), "plan": await _plans(connection, trace)}
        report[name] = result
    return report


async def measure(db_url: str, *, runs: int, compare: bool = False) -> dict[str, Any]:
    """The lookups' latencies (and plans) for each principal."""
    from app.core.db import HOT_SERVER_SETTINGS
    from app.events import similar
    from app.rules.policy import default_policy

    policy = default_policy()
    connection = await asyncpg.connect(db_url, server_settings=HOT_SERVER_SETTINGS)
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
            for name, result in (await _searches(connection, actor, runs, compare)).items():
                report[f"{name}_{who}"] = result
                was = f" (before: {result['before_ms']} ms)" if compare else ""
                _log(f"search: {name} as {who}: {result['median_ms']} ms (median){was}")

            async def lookup(i: int, actor: Any = actor, sample: list[str] = sample) -> Any:
                async with _listing(connection):  # as the route: `report_connection`
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
        for name in (*(name for name, _ in QUERIES), "similar")
    }
    return report


class Search:
    """The phase `bench/run.py` calls: `Search(bench).run()`."""

    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.a = bench.args

    def run(self) -> dict[str, Any]:
        return asyncio.run(measure(self.b.db_url, runs=30 if self.a.quick else 200))


def checks(
    rep: dict[str, Any] | None, *, judged: bool = True
) -> list[tuple[str, str, bool | None]]:
    """The summary's check rows for the search phase: on the data set as loaded (`judged`),
    or after the intake phases' new events (information)."""
    if not rep:
        return []
    when = "" if judged else " after the intake phases"
    rows = []
    for name, what in (
        ("chinese", f"q={CHINESE} (two Chinese characters), first page by relevance"),
        ("prefix", f"q={PREFIX} (English prefix), first page by relevance"),
        ("rare", f"q={RARE} (0.01 % of the events), first page by relevance"),
        ("absent", f"q={ABSENT} (no such word), first page by relevance"),
        ("similar", f"similar events of {rep['sample']} events in turn"),
    ):
        if f"{name}_agent" not in rep:  # a report of before the rare and absent words
            continue
        agent, handler = rep[f"{name}_agent"], rep[f"{name}_handler"]
        rows.append(
            (
                f"{what}{when} = {agent['median_ms']} ms agent / {handler['median_ms']} ms"
                " handler (median)",
                f"<= {TARGETS[f'{name}_ms_max']} ms" if judged else "(info)",
                rep["passed"][name] if judged else None,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--plans", action="store_true", help="print the statements' plans")
    parser.add_argument(
        "--compare", action="store_true", help="also time the one statement of before"
    )
    args = parser.parse_args()
    url = args.url.replace("postgresql+asyncpg://", "postgresql://")
    report = asyncio.run(measure(url, runs=args.runs, compare=args.compare))
    for value in report.values():
        plan = value.pop("plan", None) if isinstance(value, dict) else None
        if plan and args.plans:
            print(plan, end="\n\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
