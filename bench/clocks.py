"""Stage clocks in the bench (issue 12), on the run's database and data set.

* poll: the runner's claim statement (`clock_repository.CLAIM_DUE_SQL`) with nothing due, over
  the data set's open events, each with a running clock whose next level is days away: the
  median time of the statement in its own transaction, and its plan (an index scan of
  `ix_event_sla_next_at`, never a scan of the open events).
* burst: 1,000 open events with one level due at once (half their stage's time has passed),
  fired by ONE runner's job (`clocks.fire_due`, in pieces of a batch, each its own
  transaction) in this process; the time until every level is in the ledger.
* intake: wrk intake on one uvicorn worker with the runner off (`RUN_WORKERS=false`) and on
  (no webhook endpoint yet, so the runner's cost is the clocks and the housekeeping),
  repetitions interleaved.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import TYPE_CHECKING, Any

import asyncpg
import pg as pgmod
from ratios import alternate, paired_ratio

if TYPE_CHECKING:
    from run import Bench

TARGETS = {
    "poll_ms_max": 5.0,
    "burst_s_max": 5.0,
    "intake_runner_on_over_off_min": 0.95,
}
BURST = 1000

# Open events get the clock of the stage they are in (as the stage-clocks migration does for
# an existing database), with their next level days away: nothing is due.
_PREPARE = """
UPDATE event SET
  sla_stage = CASE
    WHEN status IN ('reported', 'classified') THEN 'respond'
    WHEN status IN ('assigned', 'in_progress') THEN 'resolve'
    WHEN status = 'resolved' THEN 'feedback'
    ELSE 'review' END,
  sla_started_at = now() - interval '1 hour',
  sla_due_at = now() + interval '30 days',
  sla_next_at = now() + interval '15 days'
WHERE status IN ('reported', 'classified', 'assigned', 'in_progress', 'resolved',
                 'feedback_given');
ANALYZE event;
"""
# 1,000 of them with warn_50 due now and warn_80 two hours away: one level each.
_BURST = f"""
UPDATE event SET sla_started_at = now() - interval '6 hours',
                 sla_due_at = now() + interval '4 hours',
                 sla_next_at = now() - interval '1 second',
                 urgent = false, severity = 'general'
WHERE id IN (SELECT id FROM event WHERE sla_stage = 'resolve' ORDER BY id LIMIT {BURST})
"""


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Clocks:
    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.a = bench.args

    def _sql(self, sql: str) -> str:
        return pgmod.psql(self.b.pg, sql, self.b.db_name)  # type: ignore[arg-type]

    def run(self) -> dict[str, Any]:
        self._sql(_PREPARE)
        open_events = int(self._sql("SELECT count(*) FROM event WHERE sla_next_at IS NOT NULL"))
        _log(f"clocks: {open_events} open events with a running clock")
        report: dict[str, Any] = {"targets": TARGETS, "open_events": open_events}
        report["poll"] = asyncio.run(self.poll())
        report["burst"] = asyncio.run(self.burst())
        report["intake"] = self.intake_on_off()
        report["passed"] = {
            "poll": report["poll"]["median_ms"] <= TARGETS["poll_ms_max"]
            and report["poll"]["index_only_due"],
            "burst": report["burst"]["fired"] == BURST
            and report["burst"]["elapsed_s"] <= TARGETS["burst_s_max"],
            "intake_runner_on_over_off": (report["intake"]["ratio"] or 0)
            >= TARGETS["intake_runner_on_over_off_min"],
        }
        return report

    async def poll(self) -> dict[str, Any]:
        """The runner's poll with nothing due: time and plan."""
        from app.events.clock_repository import CLAIM_DUE_SQL

        sql = CLAIM_DUE_SQL.replace(":now", "$1").replace(":limit", "$2")
        connection = await asyncpg.connect(self.b.db_url)
        try:
            statement = await connection.prepare(sql)
            times: list[float] = []
            for _ in range(30 if self.a.quick else 200):
                async with connection.transaction():
                    started = time.perf_counter()
                    rows = await statement.fetch(_now(), 100)
                    times.append((time.perf_counter() - started) * 1000)
                    assert rows == [], "nothing should be due"
            plan_rows = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, _now(), 100)
        finally:
            await connection.close()
        plan = "\n".join(r[0] for r in plan_rows)
        median = statistics.median(times)
        _log(f"clocks: poll with nothing due {median:.3f} ms (median)")
        return {
            "median_ms": round(median, 3),
            "p99_ms": round(sorted(times)[int(0.99 * (len(times) - 1))], 3),
            "plan": plan,
            "index_only_due": "ix_event_sla_next_at" in plan and "Seq Scan" not in plan,
        }

    async def burst(self) -> dict[str, Any]:
        """1,000 levels due at once, fired by one runner's job in pieces."""
        from app.core.db import make_engine, make_session_maker
        from app.events import clocks

        self._sql("DELETE FROM sla_firing;" + _BURST)
        engine = make_engine(self.b.db_url, pool_size=2, max_overflow=0)
        maker = make_session_maker(engine)
        pieces = 0
        try:
            started = time.perf_counter()
            while True:
                async with maker() as session, session.begin():
                    done = await clocks.fire_due(session, now=_now())
                pieces += 1
                if done < clocks.BATCH:
                    break
            elapsed = time.perf_counter() - started
        finally:
            await engine.dispose()
        fired = int(self._sql("SELECT count(*) FROM sla_firing"))
        _log(f"clocks: {fired} levels fired in {elapsed:.2f} s ({pieces} pieces)")
        return {"fired": fired, "elapsed_s": round(elapsed, 3), "pieces": pieces}

    def intake_on_off(self) -> dict[str, Any]:
        a = self.a
        runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
        for rep in range(a.reps):
            for mode in alternate(["off", "on"], rep):
                env = self.b.app_env(RUN_WORKERS="true" if mode == "on" else "false")
                svc, port = self.b._uvicorn(
                    f"service-clocks-{mode}-{rep}",
                    ["app.main:create_app", "--factory"],
                    1,
                    env,
                    "/healthz",
                )
                try:
                    self.b.wrk("intake", port, a.warmup, svc.pid, f"clocks-warm-{mode}")
                    r = self.b.wrk("intake", port, a.duration, svc.pid, f"clocks-{mode}-{rep}")
                    runs[mode].append(r)
                    _log(f"clocks intake rep {rep + 1}, runner {mode}: {r['rps']:.0f} req/s")
                finally:
                    svc.stop()
        off = statistics.median(r["rps"] for r in runs["off"])
        on = statistics.median(r["rps"] for r in runs["on"])
        on_ratio, pairs = paired_ratio(runs["on"], runs["off"], "rps")
        return {
            "runs": runs,
            "off_rps": round(off, 1),
            "on_rps": round(on, 1),
            "ratio": on_ratio,
            "ratio_pairs": pairs,
        }


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def checks(rep: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    """The summary's check rows for the clocks phase."""
    if not rep:
        return []
    p, b, i = rep["poll"], rep["burst"], rep["intake"]
    return [
        (
            f"clock poll with nothing due over {rep['open_events']} open events = "
            f"{p['median_ms']} ms (index on due clocks only: {p['index_only_due']})",
            f"<= {TARGETS['poll_ms_max']} ms",
            rep["passed"]["poll"],
        ),
        (
            f"{BURST} levels due at once fired by one runner in {b['elapsed_s']} s "
            f"({b['fired']} fired)",
            f"<= {TARGETS['burst_s_max']} s",
            rep["passed"]["burst"],
        ),
        (
            f"intake with the runner on/off = {i['ratio']} (the repetitions' "
            f"{i.get('ratio_pairs')}; medians {i['on_rps']:.0f} / {i['off_rps']:.0f})",
            f">= {TARGETS['intake_runner_on_over_off_min']}",
            rep["passed"]["intake_runner_on_over_off"],
        ),
    ]
