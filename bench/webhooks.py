"""Webhook delivery in the bench (issue 13), on the run's database and data set.

* delivery: N messages about N distinct events queued for one endpoint, sent by ONE
  `python -m app worker` to a local receiver that answers 200 at once
  (bench/webhook_receiver.py), against the ceiling: httpx POSTs of the same bodies from this
  process, with as many in flight as the worker allows per endpoint (and one at a time).
  Rate = messages / (last arrival - first arrival).
* intake: wrk intake (as in the throughput phase) on one uvicorn worker with the runner off
  (`RUN_WORKERS=false`: no fan-out, no delivery); with delivery by ONE `python -m app worker`
  beside it (`split`, the deployment the delivery figure above measures, and the target's);
  and with the service's own runner delivering (`on`: the same process answers the intakes and
  delivers every message, reported beside it). Repetitions interleaved.
* latency: a steady 200 intakes/s for a while through the service with delivery on;
  latency = when the receiver got a message - the message's `created_at`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pg as pgmod
import procs
import webhook_receiver
from ratios import alternate, paired_ratio

BENCH = Path(__file__).resolve().parent

# httpcore (under httpx, the ceiling's client and the latency phase's) asks `import sniffio` on
# every request and falls back to asyncio when it is not installed; a failed import is not
# remembered, so each request searched sys.path for it four times (a third of a request's
# CPU). Remembering that it is absent keeps the ceiling a fair one.
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]

if TYPE_CHECKING:
    from run import Bench

TARGETS = {
    "delivery_over_ceiling_min": 0.50,
    "delivery_per_s_min": 1000.0,
    "latency_p99_s_max": 1.0,
    "intake_on_over_off_min": 0.85,
}
CONCURRENCY = 4  # WEBHOOK_ENDPOINT_CONCURRENCY's default
# off: the service alone (`RUN_WORKERS=false`, nothing delivered); on: its one worker also runs
# the fan-out and delivery; split: the service as off, beside one `python -m app worker`.
INTAKE_MODES = ("off", "on", "split")
HOOK_ENV = {"WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _json(url: str, method: str = "GET") -> Any:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Webhooks:
    def __init__(self, bench: Bench) -> None:
        self.b = bench
        self.a = bench.args
        self.receiver_base = ""

    # ------------------------------------------------------------------------ plumbing

    def _receiver(self) -> procs.Started:
        proc, self.receiver_base = webhook_receiver.start(self.b.out, self.b.app_env())
        return proc

    def _service(self, name: str, *, runner: bool) -> tuple[procs.Started, int]:
        env = self.b.app_env(**HOOK_ENV, RUN_WORKERS="true" if runner else "false")
        return self.b._uvicorn(name, ["app.main:create_app", "--factory"], 1, env, "/healthz")

    def _sql(self, sql: str) -> str:
        return pgmod.psql(self.b.pg, sql, self.b.db_name)  # type: ignore[arg-type]

    def _publish_backlog(self) -> None:
        """What an earlier run left (messages written while delivery was off, or not yet
        sent when it stopped) is not the next run's work; nor is vacuuming what this
        bench-made update leaves dead (thousands of rows after a run with delivery off,
        which autovacuum would otherwise clean up during the next run, whatever its mode)."""
        self._sql(
            "UPDATE outbox_message SET published_at = now() WHERE published_at IS NULL; "
            "DELETE FROM webhook_dispatch; VACUUM outbox_message, webhook_dispatch;"
        )

    def _stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = _json(self.receiver_base + "/stats")
        return stats

    def _reset(self) -> None:
        _json(self.receiver_base + "/reset", "POST")

    def _register(self, port: int) -> str:
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/webhook-endpoints",
            json={"url": self.receiver_base + "/hook", "description": "bench"},
            headers={"Authorization": f"Bearer {self.b.token}"},
            timeout=30,
        )
        response.raise_for_status()
        endpoint_id: str = response.json()["id"]
        return endpoint_id

    # ------------------------------------------------------------------------ phases

    def run(self) -> dict[str, Any]:
        receiver = self._receiver()
        report: dict[str, Any] = {"targets": TARGETS}
        try:
            svc, port = self._service("service-hooks-setup", runner=False)
            try:
                self._publish_backlog()
                report["endpoint_id"] = self._register(port)
            finally:
                svc.stop()
            report["delivery"] = self.delivery()
            report["intake"] = self.intake_on_off()
            report["latency"] = self.latency()
        finally:
            receiver.stop()
        report["passed"] = {
            "delivery_over_ceiling": (report["delivery"]["ratio"] or 0)
            >= TARGETS["delivery_over_ceiling_min"],
            "delivery_per_s": report["delivery"]["worker_per_s"] >= TARGETS["delivery_per_s_min"],
            "latency_p99": (report["latency"]["p99_s"] or 99) <= TARGETS["latency_p99_s_max"],
            "intake_on_over_off": (report["intake"]["split_ratio"] or 0)
            >= TARGETS["intake_on_over_off_min"],
        }
        return report

    def delivery(self) -> dict[str, Any]:
        count = 5_000 if self.a.quick else 20_000
        _log(f"webhooks: queueing {count:,} messages about {count:,} events")
        bodies = asyncio.run(self._queue(count))
        import uvloop

        ceiling = uvloop.run(self._ceiling(bodies, CONCURRENCY))
        sequential = uvloop.run(self._ceiling(bodies[: min(len(bodies), 3000)], 1))
        _log(
            f"webhooks ceiling (httpx, {CONCURRENCY} in flight): {ceiling['per_s']:.0f}/s; "
            f"one at a time: {sequential['per_s']:.0f}/s"
        )
        self._reset()
        worker = procs.start(
            "webhook-worker",
            [sys.executable, "-m", "app", "worker"],
            env=self.b.app_env(**HOOK_ENV, WEBHOOK_POLL_SECONDS="0.2"),
            cwd=BENCH.parent,
            log_path=self.b.out / "webhook-worker.log",
        )
        pg_before = procs.cpu_seconds(self.b.pg_pid())
        app_before = procs.cpu_seconds([worker.pid])
        spy = self._py_spy(worker.pid) if self.a.profile else None
        deadline = time.monotonic() + 600
        # The worker's CPU from the first poll that saw deliveries on: its start (interpreter,
        # imports, migration check) left out, which on 5,000 messages is a fifth of the total.
        steady_from: tuple[int, dict[int, float]] | None = None
        try:
            while (stats := self._stats())["distinct"] < count:
                if time.monotonic() > deadline or not worker.alive():
                    raise RuntimeError(f"delivery stalled at {stats}")
                if steady_from is None and stats["distinct"]:
                    steady_from = (stats["distinct"], procs.cpu_seconds([worker.pid]))
                time.sleep(0.1)
            app_after = procs.cpu_seconds([worker.pid])
            pg_after = procs.cpu_seconds(self.b.pg_pid())
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=30)
            worker.stop()
        elapsed = max(stats["last"] - stats["first"], 1e-6)
        rate = count / elapsed
        result = {
            "messages": count,
            "worker_per_s": round(rate, 1),
            "worker_elapsed_s": round(elapsed, 2),
            "received": stats["count"],
            "worker_cpu_ms_per_message": round(
                1000 * procs.cpu_delta(app_before, app_after) / count, 3
            ),
            "worker_cpu_ms_per_message_steady": (
                round(
                    1000 * procs.cpu_delta(steady_from[1], app_after) / (count - steady_from[0]),
                    3,
                )
                if steady_from is not None and steady_from[0] < count
                else None
            ),
            "pg_cpu_ms_per_message": round(1000 * procs.cpu_delta(pg_before, pg_after) / count, 3),
            "ceiling_per_s": round(ceiling["per_s"], 1),
            "ceiling_one_at_a_time_per_s": round(sequential["per_s"], 1),
            "ratio": round(rate / ceiling["per_s"], 3) if ceiling["per_s"] else None,
        }
        _log(
            f"webhooks delivery, one worker: {rate:.0f}/s ({result['ratio']} of the ceiling); "
            f"worker CPU {result['worker_cpu_ms_per_message']} ms a message "
            f"({result['worker_cpu_ms_per_message_steady']} once delivering), "
            f"PostgreSQL {result['pg_cpu_ms_per_message']} ms"
        )
        return result

    def _py_spy(self, pid: int) -> subprocess.Popen[bytes] | None:
        """py-spy on the worker while it delivers (`--profile`): profile-webhooks.txt."""
        py_spy = Path(sys.executable).parent / "py-spy"
        if not py_spy.exists():
            return None
        return subprocess.Popen(
            [
                *(str(py_spy), "record", "--pid", str(pid), "--rate", "200"),
                *("--format", "raw", "--nonblocking"),
                *("--output", str(self.b.out / "profile-webhooks.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    async def _queue(self, count: int) -> list[bytes]:
        """`count` `event.reported` messages, one per event, written now (after the endpoint);
        their bodies as an endpoint receives them, for the ceiling."""
        from app.rules.views import EventView
        from app.webhooks.payload import Outgoing, render

        conn = await asyncpg.connect(self.b.db_url)
        try:
            rows = await conn.fetch(
                "SELECT id, ref, title, status, urgent FROM event ORDER BY md5(id::text) LIMIT $1",
                count,
            )
            now = datetime.now(UTC)
            ids, events, payloads, bodies = [], [], [], []
            for row in rows:
                data = {
                    "id": str(row["id"]),
                    "status": row["status"],
                    "urgent": row["urgent"],
                    "title": row["title"],
                }
                payload = {"type": "event.reported", "timestamp": now.isoformat(), "data": data}
                ids.append(uuid.UUID(bytes=_uuid7_bytes()))
                events.append(row["id"])
                payloads.append(json.dumps(payload))
                bodies.append(
                    render(
                        Outgoing(
                            type="event.reported",
                            timestamp=payload["timestamp"],  # type: ignore[arg-type]
                            data=data,
                            event_id=str(row["id"]),
                            event_ref=row["ref"],
                            event_title=row["title"],
                            version=1,
                            view=EventView.STAFF,
                        )
                    )
                )
            await conn.execute(
                """
INSERT INTO outbox_message (id, type, event_id, payload, created_at)
SELECT m.id, 'event.reported', m.event_id, m.payload, now()
FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[]) AS m(id, event_id, payload)
""",
                ids,
                events,
                payloads,
            )
            return bodies
        finally:
            await conn.close()

    async def _ceiling(self, bodies: list[bytes], concurrency: int) -> dict[str, float]:
        """httpx POSTs of `bodies` to the receiver, `concurrency` in flight: the ceiling."""
        url = self.receiver_base + "/ceiling"
        headers = {
            "content-type": "application/json",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1," + "A" * 44,
        }
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def loop() -> None:
                while not queue.empty():
                    body = queue.get_nowait()
                    response = await client.post(
                        url, content=body, headers={**headers, "webhook-id": str(uuid.uuid4())}
                    )
                    response.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(loop() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        return {"per_s": len(bodies) / elapsed, "elapsed_s": elapsed}

    def intake_on_off(self) -> dict[str, Any]:
        a = self.a
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in INTAKE_MODES}
        for rep in range(a.reps):
            # Each mode after each other in turn (off on split, split on off, ...).
            for mode in alternate(list(INTAKE_MODES), rep):
                self._publish_backlog()
                self._reset()
                svc, port = self._service(f"service-hooks-{mode}-{rep}", runner=mode == "on")
                worker = (
                    procs.start(
                        f"webhook-worker-{rep}",
                        [sys.executable, "-m", "app", "worker"],
                        env=self.b.app_env(**HOOK_ENV),
                        cwd=BENCH.parent,
                        log_path=self.b.out / f"webhook-worker-split-{rep}.log",
                    )
                    if mode == "split"
                    else None
                )
                try:
                    self.b.wrk("intake", port, a.warmup, svc.pid, f"hooks-warm-{mode}")
                    worker_cpu = procs.cpu_seconds([worker.pid]) if worker else {}
                    r = self.b.wrk("intake", port, a.duration, svc.pid, f"hooks-{mode}-{rep}")
                    if worker is not None:
                        r["worker_cpu_ms_per_req"] = round(
                            1000
                            * procs.cpu_delta(worker_cpu, procs.cpu_seconds([worker.pid]))
                            / max(r["requests"], 1),
                            3,
                        )
                    if mode != "off":
                        time.sleep(2)
                        r["delivered_during_and_2s_after"] = self._stats()["distinct"]
                    runs[mode].append(r)
                    _log(
                        f"webhooks intake rep {rep + 1}, delivery {mode}: {r['rps']:.0f} req/s, "
                        f"p99 {r.get('p99_ms')} ms"
                    )
                finally:
                    if worker is not None:
                        worker.stop()
                    svc.stop()
        off = statistics.median(r["rps"] for r in runs["off"])
        on = statistics.median(r["rps"] for r in runs["on"])
        split = statistics.median(r["rps"] for r in runs["split"])
        on_ratio, on_pairs = paired_ratio(runs["on"], runs["off"], "rps")
        split_ratio, split_pairs = paired_ratio(runs["split"], runs["off"], "rps")
        return {
            "runs": runs,
            "off_rps": round(off, 1),
            "on_rps": round(on, 1),
            "split_rps": round(split, 1),
            "ratio": on_ratio,
            "ratio_pairs": on_pairs,
            "split_ratio": split_ratio,
            "split_ratio_pairs": split_pairs,
        }

    def latency(self) -> dict[str, Any]:
        rate = 200
        seconds = 10.0 if self.a.quick else 30.0
        self._publish_backlog()
        svc, port = self._service("service-hooks-latency", runner=True)
        try:
            time.sleep(1)
            self._reset()
            started = datetime.now(UTC)
            import uvloop

            sent = uvloop.run(self._steady(port, rate, seconds))
            time.sleep(5)
            arrivals: dict[str, float] = _json(self.receiver_base + "/arrivals")
        finally:
            svc.stop()
        written = self._sql(
            "SELECT id || ' ' || extract(epoch FROM created_at) FROM outbox_message "
            f"WHERE created_at >= '{started.isoformat()}' AND type IN "
            "('event.reported', 'event.urgent');"
        ).split("\n")
        latencies = []
        missing = 0
        for line in filter(None, written):
            message_id, created = line.split(" ")
            arrived = arrivals.get(message_id)
            if arrived is None:
                missing += 1
            else:
                latencies.append(arrived - float(created))
        result = {
            "rate_per_s": rate,
            "seconds": seconds,
            "intakes_ok": sent["ok"],
            "intake_p99_ms": sent["p99_ms"],
            "messages": len(latencies) + missing,
            "missing_after_5s": missing,
            "p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "p99_s": round(_pct(latencies, 0.99), 3) if latencies else None,
            "max_s": round(max(latencies), 3) if latencies else None,
        }
        _log(
            f"webhooks latency at {rate} intakes/s: p50 {result['p50_s']} s, p99 "
            f"{result['p99_s']} s, max {result['max_s']} s ({missing} missing)"
        )
        return result

    async def _steady(self, port: int, rate: int, seconds: float) -> dict[str, Any]:
        """POST /v1/events at a constant `rate` per second (open loop) for `seconds`."""
        headers = {"Authorization": f"Bearer {self.b.token}"}
        durations: list[float] = []
        ok = 0
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers=headers,
            timeout=30,
            limits=httpx.Limits(max_connections=8),
        ) as client:

            async def one(n: int) -> None:
                nonlocal ok
                t0 = time.perf_counter()
                response = await client.post(
                    "/v1/events",
                    json={
                        "title": f"Steady {n}",
                        "description": "Latency of webhook delivery",
                        "channel": "api",
                        "reporter": {"name": "Bench", "email": "bench@example.com"},
                    },
                )
                durations.append(time.perf_counter() - t0)
                ok += response.status_code == 201

            tasks = []
            start = time.perf_counter()
            for n in range(int(rate * seconds)):
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(n)))
            await asyncio.gather(*tasks)
        return {"ok": ok, "p99_ms": round(1000 * _pct(durations, 0.99), 1) if durations else None}


def _uuid7_bytes() -> bytes:
    from app.core.db import uuid7

    return uuid7().bytes


def checks(rep: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    """The summary's check rows for the webhook phase."""
    if not rep:
        return []
    d, i, lat = rep["delivery"], rep["intake"], rep["latency"]
    return [
        (
            f"webhook deliveries/s, one worker = {d['worker_per_s']:.0f} "
            f"(ceiling {d['ceiling_per_s']:.0f} with {CONCURRENCY} in flight, "
            f"{d['ceiling_one_at_a_time_per_s']:.0f} one at a time)",
            f">= {TARGETS['delivery_per_s_min']:.0f}",
            d["worker_per_s"] >= TARGETS["delivery_per_s_min"],
        ),
        (
            f"webhook deliveries worker/ceiling = {d['ratio']}",
            f">= {TARGETS['delivery_over_ceiling_min']}",
            (d["ratio"] or 0) >= TARGETS["delivery_over_ceiling_min"],
        ),
        (
            f"intake -> receiver p99 at {lat['rate_per_s']} intakes/s = {lat['p99_s']} s "
            f"(p50 {lat['p50_s']} s, {lat['missing_after_5s']} missing)",
            f"<= {TARGETS['latency_p99_s_max']} s",
            lat["p99_s"] is not None
            and lat["p99_s"] <= TARGETS["latency_p99_s_max"]
            and not lat["missing_after_5s"],
        ),
        (
            f"intake with delivery on/off = {i['split_ratio']} (the repetitions' "
            f"{i.get('split_ratio_pairs')}; medians {i['split_rps']:.0f} / "
            f"{i['off_rps']:.0f}; a worker process delivers. The service's own runner "
            f"delivering: {i['ratio']}, {i['on_rps']:.0f})",
            f">= {TARGETS['intake_on_over_off_min']}",
            (i["split_ratio"] or 0) >= TARGETS["intake_on_over_off_min"],
        ),
    ]
