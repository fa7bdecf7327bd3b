"""Prometheus metrics for `/metrics` (issue 16, item 5): requests, database pools, runner jobs,
webhook deliveries and escalation levels fired.

Several workers: `python -m app serve --workers N` (N > 1) points `PROMETHEUS_MULTIPROC_DIR` at
a fresh folder before the workers start (`app.cli`). prometheus_client then keeps each
process's values in files of its own there, and a scrape, answered by whichever worker the
connection lands on, sums the files of every worker (its multiprocess mode). The pool gauges
are each worker's own figures summed over the live workers ("livesum"): a worker writes them
every `POOL_SAMPLE_SECONDS` and when it answers a scrape, and takes them away when it stops;
those of a worker that died without stopping are taken away at the next scrape.

Cost on the request path (intake is benchmarked against a bare app): `observe_request` is
called by the access-log middleware that already times every request, and finds the labelled
children of a (route, method, status) in a dict, so a request pays one dict look-up, one
counter increment and one histogram observation, and no extra middleware layer.
"""

import asyncio
import contextlib
import os
import re
from collections import Counter as Tally
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Final

import prometheus_client
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.core.db import Database

# `_created` series say when a counter began; nobody reads them here, and a scrape is smaller
# without them (multiprocess mode has none anyway).
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
NAMESPACE: Final = "cle"
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
# Whether this process writes its values to files (chosen by prometheus_client when it is
# first imported, from PROMETHEUS_MULTIPROC_DIR).
MULTIPROCESS: Final[bool] = bool(getattr(values.ValueClass, "_multiprocess", False))
POOL_SAMPLE_SECONDS: Final = 5.0
# A route label for requests no route matched (404s of any path): one series, whatever the
# path, so a scan of random paths cannot grow the metrics without bound.
UNMATCHED: Final = "unmatched"
OTHER_METHOD: Final = "OTHER"
_METHODS: Final = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
_MAX_CACHED: Final = 10_000
HTTP_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
JOB_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

REQUESTS: Final = Counter(
    "http_requests",
    "HTTP requests answered, by route template, method and status.",
    ("route", "method", "status"),
    namespace=NAMESPACE,
)
REQUEST_SECONDS: Final = Histogram(
    "http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method.",
    ("route", "method"),
    namespace=NAMESPACE,
    buckets=HTTP_BUCKETS,
)
POOL_CONNECTIONS: Final = Gauge(
    "db_pool_connections",
    "Open connections of a database pool (asyncpg: the hot paths; orm: SQLAlchemy), by state"
    " (in_use, idle), summed over the live workers.",
    ("pool", "state"),
    namespace=NAMESPACE,
    multiprocess_mode="livesum",
)
POOL_SIZE: Final = Gauge(
    "db_pool_size",
    "Configured size of a database pool, summed over the live workers.",
    ("pool",),
    namespace=NAMESPACE,
    multiprocess_mode="livesum",
)
POOL_WAITING: Final = Gauge(
    "db_pool_waiting",
    "Requests waiting in line for a hot-path (asyncpg) connection, summed over the live workers.",
    ("pool",),
    namespace=NAMESPACE,
    multiprocess_mode="livesum",
)
JOB_RUNS: Final = Counter(
    "runner_job_runs",
    "Runs of a background job, by job name and outcome: done (did work), idle (found nothing"
    " to do, or another runner holds its lease) or failed (raised; retried after a backoff).",
    ("job", "outcome"),
    namespace=NAMESPACE,
)
JOB_SECONDS: Final = Histogram(
    "runner_job_duration_seconds",
    "Duration of the runs of a background job that did work or failed, by job name.",
    ("job",),
    namespace=NAMESPACE,
    buckets=JOB_BUCKETS,
)
JOB_ITEMS: Final = Counter(
    "runner_job_items",
    "Items a background job did (rows purged, clocks fired, messages delivered...), by job.",
    ("job",),
    namespace=NAMESPACE,
)
WEBHOOK_DELIVERIES: Final = Counter(
    "webhook_deliveries",
    "Webhook delivery attempts by outcome: delivered, retrying (failed, tried again later) or"
    " failed (given up).",
    ("outcome",),
    namespace=NAMESPACE,
)
LEVELS_FIRED: Final = Counter(
    "escalation_levels_fired",
    "Levels of the stage clocks' escalation ladder fired (R1.3.1), by the policy's level id"
    " and its kind (warning, breach, escalation).",
    ("level", "kind"),
    namespace=NAMESPACE,
)

_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _children_of(route: str, method: str, status: int) -> tuple[Any, Any]:
    named = method if method in _METHODS else OTHER_METHOD
    pair = (
        REQUESTS.labels(route, named, str(status)),
        REQUEST_SECONDS.labels(route, named),
    )
    if len(_request_children) < _MAX_CACHED:
        _request_children[(route, method, status)] = pair
    return pair


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration. `route` is the matched route's template
    (`/v1/events/{event_id}`) or `UNMATCHED`: never a raw path."""
    pair = _request_children.get((route, method, status))
    if pair is None:
        pair = _children_of(route, method, status)
    pair[0].inc()
    pair[1].observe(seconds)


def job_ran(job: str, *, items: int | None, seconds: float) -> None:
    """One run of a runner job: `items` done, or None when the run failed."""
    if items is None:
        outcome = "failed"
    elif items:
        outcome = "done"
        JOB_ITEMS.labels(job).inc(items)
    else:
        JOB_RUNS.labels(job, "idle").inc()
        return
    JOB_RUNS.labels(job, outcome).inc()
    JOB_SECONDS.labels(job).observe(seconds)


def webhook_attempts(outcomes: Iterable[str]) -> None:
    """Delivery attempts whose outcomes were recorded (after their transaction committed)."""
    for outcome, count in Tally(outcomes).items():
        WEBHOOK_DELIVERIES.labels(outcome).inc(count)


def levels_fired(fired: Iterable[tuple[str, str]]) -> None:
    """Escalation-ladder levels fired, as (level id, kind) pairs (after their commit)."""
    for (level, kind), count in Tally(fired).items():
        LEVELS_FIRED.labels(level, kind).inc(count)


def after_commit(on_commit: list[Callable[[], None]] | None, count: Callable[[], None]) -> None:
    """Count once the caller's transaction has committed (`on_commit`, a runner piece's list),
    or at once when the caller commits right after (no list)."""
    if on_commit is None:
        count()
    else:
        on_commit.append(count)


# ---- database pools --------------------------------------------------------------------


def sample_pools(database: Database) -> None:
    """This process's pool figures into the pool gauges."""
    pool = database.pool
    if pool is not None:
        size, idle = pool.get_size(), pool.get_idle_size()
        POOL_CONNECTIONS.labels("asyncpg", "in_use").set(size - idle)
        POOL_CONNECTIONS.labels("asyncpg", "idle").set(idle)
        POOL_SIZE.labels("asyncpg").set(pool.get_max_size())
        POOL_WAITING.labels("asyncpg").set(database.gate.waiting if database.gate else 0)
    engine = database.session_maker.kw.get("bind")
    if isinstance(engine, AsyncEngine) and isinstance(engine.sync_engine.pool, QueuePool):
        orm = engine.sync_engine.pool
        POOL_CONNECTIONS.labels("orm", "in_use").set(orm.checkedout())
        POOL_CONNECTIONS.labels("orm", "idle").set(orm.checkedin())
        POOL_SIZE.labels("orm").set(orm.size())


async def _sample_forever(database: Database, every: float) -> None:
    while True:
        sample_pools(database)
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def sampling(database: Database, every: float = POOL_SAMPLE_SECONDS) -> AsyncIterator[None]:
    """While the block runs, this worker's pool figures are kept fresh for the scrapes other
    workers answer (multiprocess mode only: otherwise the scrape reads them itself); when it
    ends they are taken away, so the sums count live workers only."""
    if not MULTIPROCESS:
        yield
        return
    task = asyncio.create_task(_sample_forever(database, every), name="metrics:pools")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


# ---- the scrape ------------------------------------------------------------------------

_LIVE_GAUGE_FILE: Final = re.compile(r"gauge_live[a-z]+_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_workers(folder: str) -> list[int]:
    """Take away the live gauges of workers that died without stopping (killed): their last
    figures would otherwise stay in the sums. Returns their process ids."""
    dead = sorted(
        {
            pid
            for path in Path(folder).glob("gauge_live*.db")
            if (match := _LIVE_GAUGE_FILE.search(path.name))
            and not _alive(pid := int(match.group(1)))
        }
    )
    for pid in dead:
        multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]
    return dead


def exposition(database: Database | None) -> bytes:
    """The metrics in Prometheus' text format: this process's, or with several workers the sum
    of every worker's files."""
    if database is not None:
        sample_pools(database)
    if not MULTIPROCESS:
        return generate_latest(REGISTRY)
    folder = os.environ[MULTIPROC_ENV]
    forget_dead_workers(folder)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
