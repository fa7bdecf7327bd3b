"""SQL-side measurements: list-query plans (the service's own SQL), the KPI aggregate, stats.

The list SQL is not re-written here: the service's repository builds it (SQLAlchemy Core) and
we capture the statement and its bound parameters with a `before_cursor_execute` hook, then
EXPLAIN (ANALYZE, BUFFERS) it and time it as a prepared statement with custom and generic plans
(asyncpg prepares statements; PostgreSQL may switch to a generic plan after five runs).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import statistics
import time
import uuid
from typing import Any

import asyncpg
import pg as pgmod

# name, principal, params(anchor) -> [(key, value)]
LIST_SCENARIOS: list[dict[str, Any]] = [
    {"name": "no filter", "principal": "admin", "params": []},
    {
        "name": "department=IT & category=business_issue & severity=general",
        "principal": "admin",
        "params": [("department", "IT"), ("category", "business_issue"), ("severity", "general")],
    },
    {
        "name": "status=closed & category=customer_complaint & created_from=2025-06-01",
        "principal": "admin",
        "params": [
            ("status", "closed"),
            ("category", "customer_complaint"),
            ("created_from", "2025-06-01T00:00:00+00:00"),
        ],
    },
    {
        "name": "status=assigned,in_progress & overdue=true",
        "principal": "admin",
        "params": [("status", "assigned"), ("status", "in_progress"), ("overdue", "true")],
    },
    {
        "name": "q=printer & department=IT",
        "principal": "admin",
        # Newest first, the default with q (README, Search; the ranked search is
        # bench/search.py's).
        "params": [("q", "printer"), ("department", "IT"), ("sort", "created_at")],
    },
    {
        "name": "assignee_id=<IT handler 1>",
        "principal": "admin",
        "params": [("assignee_id", str(uuid.UUID(hashlib.md5(b"bench-handler-IT-1").hexdigest())))],
    },
    {
        "name": "urgent=true & severity=major",
        "principal": "admin",
        "params": [("urgent", "true"), ("severity", "major")],
    },
    {"name": "handler of IT (visibility rule), no filter", "principal": "handler", "params": []},
    {
        "name": "CRM integration's own events (visibility rule), no filter",
        "principal": "integration",
        "params": [],
    },
    {
        "name": "status=reported (the intake queue)",
        "principal": "admin",
        "params": [("status", "reported")],
    },
    {
        "name": "status=resolved (the feedback queue)",
        "principal": "admin",
        "params": [("status", "resolved")],
    },
]


def _kpi_sql() -> dict[str, str]:
    """The service's own KPI statements (app/kpis/repository.py), as `GET /v1/kpis` runs them."""
    from app.kpis.repository import COUNTS_SQL
    from app.rules.kpis import KpiGroup

    return {
        "per_department": COUNTS_SQL[KpiGroup.DEPARTMENT],
        "per_assignee": COUNTS_SQL[KpiGroup.ASSIGNEE],
        "per_category": COUNTS_SQL[KpiGroup.CATEGORY],
        "one_department_month": COUNTS_SQL[KpiGroup.DEPARTMENT],
    }


def seq_scans(plan_lines: list[str]) -> list[str]:
    return [ln.strip().lstrip("-> ").split("  (")[0] for ln in plan_lines if "Seq Scan" in ln]


async def _timed(
    stmt: asyncpg.prepared_stmt.PreparedStatement, args: list[Any], n: int
) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await stmt.fetch(*args)
        out.append(round((time.perf_counter() - t0) * 1000, 2))
    return out


async def _plan_modes(
    conn: asyncpg.Connection, sql: str, args: list[Any], n: int
) -> dict[str, Any]:
    """Median ms as a prepared statement with forced custom vs generic plans, + the plan."""
    out: dict[str, Any] = {}
    for mode in ("force_custom_plan", "force_generic_plan"):
        await conn.execute(f"SET plan_cache_mode = {mode}")
        stmt = await conn.prepare(sql)
        times = await _timed(stmt, args, n)
        out[mode.split("_")[1] + "_median_ms"] = round(statistics.median(times), 2)
    await conn.execute("RESET plan_cache_mode")
    rows = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + sql, *args)
    plan = [r[0] for r in rows]
    out["plan"] = plan
    out["seq_scans"] = seq_scans(plan)
    return out


async def kpi(url: str, *, runs: int, anchor: str) -> dict[str, Any]:
    year = dt.datetime.fromisoformat(anchor).year - 1
    lo = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    hi = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    conn = await asyncpg.connect(url, server_settings={"jit": "off"})
    result: dict[str, Any] = {}
    try:
        in_year = await conn.fetchval(
            "SELECT count(*) FROM event WHERE created_at >= $1 AND created_at < $2", lo, hi
        )
        for name, sql in _kpi_sql().items():
            month = name == "one_department_month"
            args: list[Any] = [lo, hi, None]
            if month:
                args = [
                    dt.datetime(year, 6, 1, tzinfo=dt.UTC),
                    dt.datetime(year, 7, 1, tzinfo=dt.UTC),
                    "IT",
                ]
            stmt = await conn.prepare(sql)
            times = await _timed(stmt, args, runs)  # default plan_cache_mode: auto
            rows = await stmt.fetch(*args)
            entry = {
                "year": year if not month else f"{year}-06, IT",
                "rows_in_year": in_year,
                "runs_ms": times,
                "median_ms": round(statistics.median(times), 1),
                "sql": sql.strip(),
                "result": [dict(r) for r in rows][:20],
            }
            entry.update(await _plan_modes(conn, sql, args, 3))
            result[name] = entry
    finally:
        await conn.close()
    return result


async def _principals(conn: asyncpg.Connection) -> dict[str, Any]:
    from app.core.auth import Principal
    from app.rules.vocabulary import Role

    out = {}
    keys = (("admin", "bench"), ("handler", "bench-handler"), ("integration", "bench-crm"))
    for name, key in keys:
        row = await conn.fetchrow(
            "SELECT k.id AS key_id, u.id, u.name, u.roles, u.department_id, d.code "
            "FROM api_key k JOIN app_user u ON u.id = k.user_id "
            "LEFT JOIN department d ON d.id = u.department_id WHERE k.name = $1",
            key,
        )
        out[name] = Principal(
            user_id=row["id"],
            api_key_id=row["key_id"],
            name=row["name"],
            roles=frozenset(Role(r) for r in row["roles"]),
            department_id=row["department_id"],
            department=row["code"],
            service_account=True,
        )
    return out


def _event_filter(params: list[tuple[str, str]]) -> Any:
    from app.events.repository import EventFilter
    from app.rules.vocabulary import Category, Severity, Status

    multi: dict[str, list[str]] = {}
    for k, v in params:
        multi.setdefault(k, []).append(v)
    one = {k: v[0] for k, v in multi.items()}

    def flag(key: str) -> bool | None:
        return None if key not in one else one[key] == "true"

    def when(key: str) -> dt.datetime | None:
        return dt.datetime.fromisoformat(one[key]) if key in one else None

    return EventFilter(
        status=[Status(s) for s in multi.get("status", [])],
        category=[Category(s) for s in multi.get("category", [])],
        severity=[Severity(s) for s in multi.get("severity", [])],
        department=one.get("department"),
        assignee_id=uuid.UUID(one["assignee_id"]) if "assignee_id" in one else None,
        urgent=flag("urgent"),
        overdue=flag("overdue"),
        created_from=when("created_from"),
        created_to=when("created_to"),
        text=one.get("q"),
        external_system=one.get("external_system"),
    )


async def list_plans(url: str, list_results: dict[str, Any]) -> dict[str, Any]:
    """For every list scenario: the service's SQL, EXPLAIN (ANALYZE, BUFFERS), custom/generic."""
    from app.core.pagination import decode_cursor
    from app.events import repository

    raw = await asyncpg.connect(url, server_settings={"jit": "off"})
    out: dict[str, Any] = {}
    try:
        principals = await _principals(raw)
        for scen in LIST_SCENARIOS:
            res = list_results.get(scen["name"])
            if not res:
                continue
            for depth in ("first_page", "deep"):
                info = res.get(depth, {})
                if "median_ms" not in info:
                    continue
                cursor = decode_cursor(info["cursor"]) if info.get("cursor") else None
                sql, args = repository.list_query(
                    principals[scen["principal"]],
                    _event_filter(scen["params"]),
                    cursor=cursor,
                    limit=50,
                    now=dt.datetime.now(dt.UTC),
                )
                entry = await _plan_modes(raw, sql, args, 5)
                entry["sql"] = sql
                out[f"{scen['name']} [{depth}]"] = entry
    finally:
        await raw.close()
    return out


def _psql_json(pg: pgmod.Postgres, db: str, sql: str) -> Any:
    text = pgmod.psql(pg, f"SELECT coalesce(json_agg(t), '[]') FROM ({sql}) t;", db).strip()
    return json.loads(text)


def top_statements(pg: pgmod.Postgres, db: str, requests: int) -> list[dict[str, Any]]:
    """pg_stat_statements of one measured run: where the database time goes per request."""
    rows = _psql_json(
        pg,
        db,
        "SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, "
        "round(mean_exec_time::numeric, 3) AS mean_ms, rows, "
        "left(regexp_replace(query, '\\s+', ' ', 'g'), 220) AS query "
        "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
        "WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 12",
    )
    for r in rows:
        r["calls_per_req"] = round(r["calls"] / max(requests, 1), 3)
        r["exec_ms_per_req"] = round(float(r["total_ms"]) / max(requests, 1), 4)
    return rows


def index_usage(pg: pgmod.Postgres, db: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = _psql_json(
        pg,
        db,
        "SELECT relname AS table, indexrelname AS index, idx_scan, idx_tup_read, "
        "pg_size_pretty(pg_relation_size(indexrelid)) AS size "
        "FROM pg_stat_user_indexes WHERE relname IN ('event', 'timeline_entry', 'plan_step', "
        "'outbox_message', 'idempotency_record', 'api_key') ORDER BY relname, idx_scan DESC",
    )
    return rows
