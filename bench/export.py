"""The full CSV export in the bench (issue 14, item 6), on the run's database and data set.

* full: `GET /v1/events?format=csv` as the admin (every event of the data set, 1,000,000 in
  the full run) from one uvicorn worker through HTTP, read by a client that parses the CSV as
  it arrives (Python's `csv` over the response stream), while a thread samples the service's
  RSS every `SAMPLE_S` seconds (psutil, the whole process tree). Reports rows, seconds,
  bytes, rows per second, and the RSS before, at its peak and after. Passes when every event
  came back as a row and the peak stayed under `TARGETS["peak_rss_mb_max"]`.
* abandoned: the same export read for `ABANDON_BYTES` and then hung up on: the service must
  end the export's statement and give its connection back (no `sort_key` query left in
  `pg_stat_activity` within `ABANDON_WAIT_S` seconds).

From `bench/run.py`: `export.Export(bench).run()` after `migrate_and_load()`, and
`export.checks(report["export"])` for the summary's rows. On its own (a small data set):
`python bench/export.py --events 20000`.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import io
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pg as pgmod
import procs
import psutil

if TYPE_CHECKING:
    from run import Bench

TARGETS = {"peak_rss_mb_max": 250.0}
SAMPLE_S = 0.05
ABANDON_BYTES = 4 * 2**20
ABANDON_WAIT_S = 5.0
# The export's statement, as the service's application name shows it in pg_stat_activity.
_EXPORT_QUERIES = """
SELECT count(*) FROM pg_stat_activity
WHERE application_name = 'closed-loop-events' AND query LIKE '%sort_key%'
  AND state <> 'idle'
"""


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class RssSampler(threading.Thread):
    """The RSS of a process tree every `interval` seconds until stopped: the peak of the
    largest process (the worker) and of the whole tree, in MB."""

    def __init__(self, pid: int, interval: float = SAMPLE_S) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_process_mb = 0.0
        self.peak_tree_mb = 0.0
        self.samples = 0
        self._stop_event = threading.Event()

    def sample(self) -> tuple[float, float]:
        sizes = []
        for proc in procs.tree(self.pid):
            try:
                sizes.append(proc.memory_info().rss / 2**20)
            except psutil.NoSuchProcess:
                continue
        return (max(sizes, default=0.0), sum(sizes))

    def run(self) -> None:
        while not self._stop_event.is_set():
            largest, total = self.sample()
            self.peak_process_mb = max(self.peak_process_mb, largest)
            self.peak_tree_mb = max(self.peak_tree_mb, total)
            self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def stream_export(port: int, token: str, pid: int) -> dict[str, Any]:
    """One full CSV export through HTTP while sampling the service's RSS."""
    sampler = RssSampler(pid)
    rss_before = sampler.sample()[0]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    sampler.start()
    started = time.perf_counter()
    try:
        conn.request(
            "GET", "/v1/events", headers={"Authorization": f"Bearer {token}", "Accept": "text/csv"}
        )
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"export -> {resp.status}: {resp.read()[:300]!r}")
        first_byte_s = time.perf_counter() - started
        counted = _CountingReader(resp)
        text = io.TextIOWrapper(counted, encoding="utf-8-sig", newline="")  # type: ignore[arg-type]
        reader = csv.reader(text)
        header = next(reader)
        rows = sum(1 for _ in reader)
        elapsed = time.perf_counter() - started
    finally:
        sampler.stop()
        conn.close()
    time.sleep(0.5)
    return {
        "rows": rows,
        "columns": len(header),
        "seconds": round(elapsed, 2),
        "first_byte_ms": round(first_byte_s * 1000, 1),
        "rows_per_s": round(rows / elapsed) if elapsed else None,
        "mb": round(counted.bytes / 2**20, 1),
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(sampler.peak_process_mb, 1),
        "peak_rss_tree_mb": round(sampler.peak_tree_mb, 1),
        "rss_after_mb": round(sampler.sample()[0], 1),
        "samples": sampler.samples,
        "content_type": resp.getheader("content-type"),
    }


class _CountingReader(io.RawIOBase):
    """A response as a raw stream that counts the bytes read through it."""

    def __init__(self, resp: http.client.HTTPResponse) -> None:
        self.resp = resp
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.resp.readinto(buffer)
        self.bytes += n
        return n


def abandon_export(port: int, token: str, count_queries: Any) -> dict[str, Any]:
    """Read part of an export, hang up, and wait for the service to end its statement."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/v1/events?format=csv", headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    read = 0
    while read < ABANDON_BYTES:
        chunk = resp.read1(2**16)
        if not chunk:
            break
        read += len(chunk)
    running = int(count_queries())
    conn.sock.close()  # type: ignore[union-attr]
    conn.close()
    hung_up = time.perf_counter()
    left = running
    while time.perf_counter() - hung_up < ABANDON_WAIT_S:
        left = int(count_queries())
        if left == 0:
            break
        time.sleep(0.1)
    return {
        "read_mb": round(read / 2**20, 1),
        "running_before_hang_up": running,
        "left_after": left,
        "released_in_s": round(time.perf_counter() - hung_up, 2) if left == 0 else None,
    }


class Export:
    def __init__(self, bench: Bench) -> None:
        self.b = bench

    def _sql(self, sql: str) -> str:
        return pgmod.psql(self.b.pg, sql, self.b.db_name)  # type: ignore[arg-type]

    def run(self) -> dict[str, Any]:
        events = int(self._sql("SELECT count(*) FROM event"))
        svc, port = self.b.start_service(1)
        try:
            _log(f"export: streaming {events:,} events as CSV from one worker")
            full = stream_export(port, self.b.token, svc.pid)
            _log(
                f"export: {full['rows']:,} rows, {full['mb']} MB in {full['seconds']} s, "
                f"peak RSS {full['peak_rss_mb']} MB (before {full['rss_before_mb']} MB)"
            )
            abandoned = abandon_export(port, self.b.token, lambda: self._sql(_EXPORT_QUERIES))
            _log(f"export: abandoned after {abandoned['read_mb']} MB -> {abandoned}")
        finally:
            svc.stop()
        return {
            "targets": TARGETS,
            "events": events,
            "full": full,
            "abandoned": abandoned,
            "passed": {
                "full": full["rows"] == events and full["peak_rss_mb"] < TARGETS["peak_rss_mb_max"],
                "abandoned": abandoned["left_after"] == 0,
            },
        }


def checks(rep: dict[str, Any] | None) -> list[tuple[str, str, bool | None]]:
    """The summary's check rows for the export phase."""
    if not rep:
        return []
    f, a = rep["full"], rep["abandoned"]
    return [
        (
            f"full CSV export of {rep['events']:,} events: {f['rows']:,} rows, {f['mb']} MB in "
            f"{f['seconds']} s, peak RSS {f['peak_rss_mb']} MB",
            f"every row, < {TARGETS['peak_rss_mb_max']} MB",
            rep["passed"]["full"],
        ),
        (
            f"an export abandoned after {a['read_mb']} MB ends its statement "
            f"(released in {a['released_in_s']} s)",
            f"<= {ABANDON_WAIT_S} s",
            rep["passed"]["abandoned"],
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """On its own: a database, a data set of `--events`, the export phase, the report."""
    import json

    import run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results-dir", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    args.quick = True
    args.get_ids = 10
    bench = run.Bench(args)
    try:
        bench.setup_database()
        bench.migrate_and_load()
        report = Export(bench).run()
    finally:
        procs.stop_all()
        bench.teardown()
    print(json.dumps(report, indent=2))
    for text, target, passed in checks(report):
        print(f"{'PASS' if passed else 'FAIL'}  {text}  (target {target})")
    return 0 if all(report["passed"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
