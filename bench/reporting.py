"""Appraisals, KPIs and trends in the bench (issue 14 items 3 and 5), on the run's data set.

* rebuild: the data set is bulk-loaded with the triggers off (`session_replication_role =
  replica`), so the reporting rollup is recomputed once from the events after the load
  (`rebuild(url)`, the migration's backfill; call it right after `dataset.load`, before any
  phase reads `/v1/kpis`): its time and the rollup's size. Then the events still `reported` an
  hour after their report are folded into it as the service's runner does
  (`fold_reported_events`, migration 7b4e1c9d2f58: batches of `report_rollup_fold`), so that
  the reports read the rollup the service would have by then: the fold's time and count.
* timings: `GET /v1/appraisals` (per department and per employee), `GET /v1/kpis` (per
  department, assignee and category) and `GET /v1/trends` (weekly by category, monthly by root
  cause) over the last whole calendar year of the data set, through HTTP on one uvicorn worker,
  one connection and no other load: the median of N runs after one warm-up, against 50 ms.
* check: for every grouping of the rollup, the year's sums per day and key read from the rollup
  equal the same sums computed from the event table alone (`report_cells` over every event);
  and the KPI statement over the index (the pre-rollup path) gives the KPI endpoint's figures.

Call from bench/run.py: `report["reporting"] = reporting.Reporting(bench).run()` (after
`migrate_and_load`, which must call `reporting.rebuild(self.db_url)` after `dataset.load`), and
`reporting.checks(report.get("reporting"))` for the summary rows.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import statistics
import time
import urllib.parse
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from run import Bench

TARGET_MS = 50.0
DIMS = ("department", "assignee", "category", "severity", "root_cause")
# (path, extra query) timed; each over the whole year.
REQUESTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("/v1/appraisals", {"group_by": "department"}),
    ("/v1/appraisals", {"group_by": "employee"}),
    ("/v1/kpis", {"group_by": "department"}),
    ("/v1/kpis", {"group_by": "assignee"}),
    ("/v1/kpis", {"group_by": "category"}),
    ("/v1/trends", {"interval": "week", "by": "category"}),
    ("/v1/trends", {"interval": "month", "by": "root_cause"}),
)


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def rebuild(url: str) -> dict[str, Any]:
    """Recompute the rollup from the events (after a load that bypassed the triggers), then
    fold in the events left `reported` as the runner would."""
    from app.reporting.service import FOLD_AFTER, FOLD_BATCH

    async def run() -> dict[str, Any]:
        connection = await asyncpg.connect(url, server_settings={"jit": "off"})
        try:
            started = time.perf_counter()
            await connection.execute("SELECT report_rollup_rebuild()")
            elapsed = time.perf_counter() - started
            started = time.perf_counter()
            folded = 0
            while True:  # the job's pieces, until one finds fewer than a batch
                batch = await connection.fetchval(
                    "SELECT report_rollup_fold(now() - $1::interval, $2)", FOLD_AFTER, FOLD_BATCH
                )
                folded += batch
                if batch < FOLD_BATCH:
                    break
            fold_s = time.perf_counter() - started
            await connection.execute("VACUUM (ANALYZE) report_rollup")
            rows = await connection.fetchval("SELECT count(*) FROM report_rollup")
            size = await connection.fetchval(
                "SELECT pg_size_pretty(pg_total_relation_size('report_rollup'))"
            )
        finally:
            await connection.close()
        _log(
            f"reporting: rollup rebuilt in {elapsed:.1f} s ({rows} rows, {size});"
            f" {folded} events left reported folded in {fold_s:.1f} s"
        )
        return {
            "rebuild_s": round(elapsed, 2),
            "rows": rows,
            "size": size,
            "folded": folded,
            "fold_s": round(fold_s, 2),
        }

    return asyncio.run(run())


def last_whole_year(anchor: str) -> int:
    """The last calendar year the data set covers whole (it spans the 730 days before anchor)."""
    return datetime.fromisoformat(anchor).year - 1


class Reporting:
    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.a = bench.args

    def run(self) -> dict[str, Any]:
        year = last_whole_year(self.b.report["dataset"]["anchor"])
        report: dict[str, Any] = {"target_ms": TARGET_MS, "year": year}
        if "reporting_rollup" not in self.b.report:  # not rebuilt after the load yet
            self.b.report["reporting_rollup"] = rebuild(self.b.db_url)
        report["rollup"] = self.b.report["reporting_rollup"]
        report["check"] = asyncio.run(check(self.b.db_url, year))
        svc, port = self.b._uvicorn(
            "service-reporting",
            ["app.main:create_app", "--factory"],
            1,
            self.b.app_env(),
            "/healthz",
        )
        try:
            report["timings"] = self.timings(port, year)
        finally:
            svc.stop()
        report["passed"] = {
            "timings": all(t["median_ms"] <= TARGET_MS for t in report["timings"].values()),
            "rollup_equals_direct": report["check"]["equal"],
        }
        return report

    def timings(self, port: int, year: int) -> dict[str, Any]:
        return time_requests(port, self.b.token, year, runs=self.a.kpi_runs)


def time_requests(port: int, token: str, year: int, *, runs: int) -> dict[str, Any]:
    """Each request over the whole year: the median of `runs` after one warm-up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {token}"}
    out: dict[str, Any] = {}
    try:
        for path, extra in REQUESTS:
            whole_days = path != "/v1/kpis"
            period = (
                {"from": f"{year}-01-01", "to": f"{year + 1}-01-01"}
                if whole_days
                else {"from": f"{year}-01-01T00:00:00Z", "to": f"{year + 1}-01-01T00:00:00Z"}
            )
            query = urllib.parse.urlencode({**period, **extra})
            times = []
            for _ in range(runs + 1):
                started = time.perf_counter()
                conn.request("GET", f"{path}?{query}", headers=headers)
                response = conn.getresponse()
                body = response.read()
                times.append(round((time.perf_counter() - started) * 1000, 2))
                if response.status != 200:
                    raise RuntimeError(f"{path} {extra} -> {response.status}: {body[:300]!r}")
            name = f"{path.rsplit('/', 1)[1]} {' '.join(extra.values())}"
            median = statistics.median(times[1:])
            out[name] = {"runs_ms": times[1:], "median_ms": round(median, 1)}
            if path == "/v1/kpis":
                out[name]["events"] = json.loads(body)["totals"]["events"]
            _log(f"reporting: GET {name} {year}: median {median:.1f} ms")
    finally:
        conn.close()
    return out


def same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Equal sums; seconds added up in another order may differ in their last bits."""
    a, b = a or {}, b or {}
    return a.keys() == b.keys() and all(
        math.isclose(a[k], b[k], rel_tol=1e-9) if isinstance(a[k], float) else a[k] == b[k]
        for k in a
    )


async def check(url: str, year: int) -> dict[str, Any]:
    """The rollup against the event table: every grouping's sums per day and key of the year,
    and the KPI figures against the index statement of the KPIs."""
    from app.kpis import repository as kpi_statements
    from app.reporting import repository
    from app.rules.kpis import KpiGroup

    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    window = repository.Window(start, end, datetime.now(UTC).date())
    connection = await asyncpg.connect(url, server_settings={"jit": "off"})
    differences: list[str] = []
    started = time.perf_counter()
    try:
        for dim in DIMS:
            found = []
            for rollup in (True, False):
                rows = await repository.sums(connection, window, dim=dim, unit="day", rollup=rollup)
                found.append(
                    {
                        (r["key"], r["bucket"]): {k: v for k, v in r.items() if v}
                        for r in rows
                        if any(isinstance(v, float) and v for v in r.values())
                    }
                )
            rolled, direct = found
            keys = sorted(
                (
                    k
                    for k in rolled.keys() | direct.keys()
                    if not same(rolled.get(k), direct.get(k))
                ),
                key=str,
            )
            if keys:
                shown = [(k, rolled.get(k), direct.get(k)) for k in keys[:2]]
                differences.append(f"{dim}: {len(keys)} cells differ, e.g. {shown}")
        begin = datetime(year, 1, 1, tzinfo=UTC)
        finish = datetime(year + 1, 1, 1, tzinfo=UTC)
        for group in KpiGroup:
            direct = await kpi_statements.counts(connection, group, begin, finish, None)
            rolled = await repository.sums(
                connection,
                window,
                dim={"department": "department", "assignee": "assignee"}.get(group, "category"),
                measures=("events", "resolved", "closed"),
            )
            a = {r["key"]: (r["events"], r["resolved"], r["closed"]) for r in direct}
            b = {
                r["key"] or None: (int(r["events"]), int(r["resolved"]), int(r["closed"]))
                for r in rolled
                if r["events"]
            }
            if a != b:
                differences.append(f"kpis {group}: {a} != {b}")
    finally:
        await connection.close()
    elapsed = time.perf_counter() - started
    _log(f"reporting: rollup vs direct {differences or 'equal'}")
    return {"equal": not differences, "differences": differences, "elapsed_s": round(elapsed, 1)}


def checks(rep: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    """The summary's check rows for the reporting phase."""
    if not rep:
        return []
    rows: list[tuple[str, str, bool | None]] = [
        (
            f"GET {name} over {rep['year']} = {t['median_ms']} ms (median)",
            f"<= {TARGET_MS} ms",
            t["median_ms"] <= TARGET_MS,
        )
        for name, t in rep["timings"].items()
    ]
    rows.append(
        (
            f"reporting rollup equals the direct query over {rep['year']} "
            f"({rep['rollup']['rows']} rollup rows)",
            "equal",
            rep["check"]["equal"],
        )
    )
    return rows
