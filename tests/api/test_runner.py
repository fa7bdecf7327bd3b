"""The background runner on a real PostgreSQL (issue 12, item 1): jobs run and commit their
work, a failing job is logged and retried while the others go on, any number of runners
never do one piece of work twice (rows claimed with FOR UPDATE SKIP LOCKED, singletons under
a lease), a stop finishes the piece in hand, a cancelled piece leaves nothing half-written,
and RUN_WORKERS=false starts no runner.

The toy work lives in two tables made for each test (`work` rows to claim, `done` rows that
record which runner did each one) and dropped after it; runners really commit, on engines of
their own."""

import asyncio
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import make_engine
from app.core.idempotency_models import IdempotencyRecord
from app.jobs import PURGE_IDEMPOTENCY_KEYS, service_jobs
from app.main import create_app
from app.runner import runner as runner_module
from app.runner.claims import claim, release_lease, renew_lease, take_lease
from app.runner.job import Job, Piece
from app.runner.models import JobLease
from app.runner.runner import Runner

POLL = 0.02
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Toy:
    work: sa.TableClause
    done: sa.TableClause


@pytest.fixture
async def toy(engine: AsyncEngine) -> AsyncGenerator[Toy]:
    suffix = uuid.uuid4().hex[:10]
    work, done = f"runner_toy_work_{suffix}", f"runner_toy_done_{suffix}"
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE TABLE {work} (id int PRIMARY KEY, done_by text)"))
        await conn.execute(
            sa.text(f"CREATE TABLE {done} (work_id int NOT NULL, part int NOT NULL, holder text)")
        )
    yield Toy(
        work=sa.table(work, sa.column("id"), sa.column("done_by")),
        done=sa.table(done, sa.column("work_id"), sa.column("part"), sa.column("holder")),
    )
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP TABLE {work}, {done}"))


async def _add_work(engine: AsyncEngine, toy: Toy, count: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.insert(toy.work), [{"id": i} for i in range(1, count + 1)])


async def _rows(engine: AsyncEngine, statement: sa.Executable) -> list[Any]:
    """The rows of `statement`, read on a connection of its own (what other runners see)."""
    async with engine.connect() as conn:
        return list(await conn.execute(statement))


def toy_job(
    toy: Toy,
    name: str,
    *,
    batch: int = 5,
    pause: float = 0.0,
    seen: list[datetime] | None = None,
) -> Job:
    """Claims up to `batch` undone rows, holds them `pause` seconds, marks them done by this
    runner and records one `done` row per work row: a row done twice shows as two."""

    async def work(piece: Piece) -> int:
        if seen is not None:
            seen.append(piece.now)
        ids = list(
            await piece.session.scalars(
                claim(
                    sa.select(toy.work.c.id)
                    .where(toy.work.c.done_by.is_(None))
                    .order_by(toy.work.c.id),
                    limit=batch,
                )
            )
        )
        if pause:
            await asyncio.sleep(pause)
        if not ids:
            return 0
        await piece.session.execute(
            sa.update(toy.work).where(toy.work.c.id.in_(ids)).values(done_by=piece.holder)
        )
        await piece.session.execute(
            sa.insert(toy.done), [{"work_id": i, "part": 1, "holder": piece.holder} for i in ids]
        )
        return len(ids)

    return Job(name=name, work=work)


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait (at most 15 seconds) until `check` holds."""
    async with asyncio.timeout(15):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)  # the condition is in the database: poll it


@pytest.fixture
async def engines(migrated_url: str) -> AsyncGenerator[tuple[AsyncEngine, AsyncEngine]]:
    """Two independent engines (connection pools) on the same database: two runners' worth."""
    first = make_engine(migrated_url, pool_size=2, max_overflow=0)
    second = make_engine(migrated_url, pool_size=2, max_overflow=0)
    yield first, second
    await first.dispose()
    await second.dispose()


def _maker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def _undone(engine: AsyncEngine, toy: Toy) -> int:
    rows = await _rows(
        engine, sa.select(sa.func.count()).select_from(toy.work).where(toy.work.c.done_by.is_(None))
    )
    return int(rows[0][0])


async def test_a_job_runs_and_commits_its_work_at_the_injected_time(
    engine: AsyncEngine, toy: Toy
) -> None:
    await _add_work(engine, toy, 12)
    seen: list[datetime] = []
    runner = Runner(
        _maker(engine), [toy_job(toy, "toy", seen=seen)], poll_seconds=POLL, clock=lambda: T0
    )
    runner.start()
    try:
        await eventually(lambda: _has_no_undone(engine, toy))
    finally:
        await runner.stop()
    done = await _rows(engine, sa.select(toy.done.c.work_id, toy.done.c.holder))
    assert sorted(r[0] for r in done) == list(range(1, 13))
    assert {r[1] for r in done} == {runner.holder}
    assert seen
    assert set(seen) == {T0}


async def _has_no_undone(engine: AsyncEngine, toy: Toy) -> bool:
    return await _undone(engine, toy) == 0


async def test_two_runners_on_one_database_never_do_a_row_twice(
    engines: tuple[AsyncEngine, AsyncEngine], engine: AsyncEngine, toy: Toy
) -> None:
    """Two runners, each on its own connection pool, really concurrent: each holds its claimed
    rows a moment before marking them, so without SKIP LOCKED claims they would take the same
    rows. Every row is done exactly once, and both runners did some."""
    await _add_work(engine, toy, 200)
    runners = [
        Runner(_maker(e), [toy_job(toy, "toy", pause=0.01)], poll_seconds=POLL) for e in engines
    ]
    for runner in runners:
        runner.start()
    try:
        await eventually(lambda: _has_no_undone(engine, toy))
    finally:
        for runner in runners:
            await runner.stop()
    counts = await _rows(
        engine,
        sa.select(toy.done.c.work_id, sa.func.count()).group_by(toy.done.c.work_id),
    )
    assert len(counts) == 200
    assert {count for _id, count in counts} == {1}
    by_holder = await _rows(
        engine, sa.select(toy.done.c.holder, sa.func.count()).group_by(toy.done.c.holder)
    )
    assert {holder for holder, _count in by_holder} == {r.holder for r in runners}
    marked = await _rows(
        engine,
        sa.select(sa.func.count())
        .select_from(toy.work.join(toy.done, toy.work.c.id == toy.done.c.work_id))
        .where(toy.work.c.done_by == toy.done.c.holder),
    )
    assert marked[0][0] == 200


@pytest.fixture
def runner_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh logger for the runner module: `configure_logging` caches a logger's processors
    on first use, so one used by an earlier test would bypass `capture_logs`."""
    monkeypatch.setattr(runner_module, "log", structlog.get_logger(runner_module.__name__))


@pytest.mark.usefixtures("runner_log")
async def test_a_failing_job_is_logged_and_retried_with_backoff_and_others_keep_running(
    engine: AsyncEngine, toy: Toy
) -> None:
    """The failing piece writes before it raises: nothing of it is kept."""
    await _add_work(engine, toy, 1)
    attempts: list[datetime] = []
    healthy_runs: list[datetime] = []

    async def boom(piece: Piece) -> int:
        attempts.append(piece.now)
        await piece.session.execute(sa.insert(toy.done).values(work_id=1, part=1))
        raise RuntimeError("receiver on fire")

    async def healthy(piece: Piece) -> int:
        healthy_runs.append(piece.now)
        return 0

    runner = Runner(
        _maker(engine),
        [Job(name="boom", work=boom), Job(name="healthy", work=healthy)],
        poll_seconds=POLL,
    )

    async def enough() -> bool:
        return len(attempts) >= 4 and len(healthy_runs) >= 4

    with structlog.testing.capture_logs() as logs:
        runner.start()
        try:
            await eventually(enough)
        finally:
            await runner.stop()
    failed = [e for e in logs if e["event"] == "job_failed"]
    assert len(failed) >= 3
    assert {e["job"] for e in failed} == {"boom"}
    assert {e["log_level"] for e in failed} == {"error"}
    assert failed[0]["error"] == "RuntimeError: receiver on fire"
    assert [e["failures"] for e in failed[:3]] == [1, 2, 3]
    assert [e["retry_in_seconds"] for e in failed[:3]] == [POLL, 2 * POLL, 4 * POLL]
    assert await _rows(engine, sa.select(toy.done)) == []


async def test_a_stop_finishes_the_piece_in_hand_and_starts_no_other(
    engine: AsyncEngine, toy: Toy
) -> None:
    await _add_work(engine, toy, 2)
    started, gate = asyncio.Event(), asyncio.Event()

    async def slow(piece: Piece) -> int:
        [row_id] = await piece.session.scalars(
            claim(sa.select(toy.work.c.id).where(toy.work.c.done_by.is_(None)), limit=1)
        )
        await piece.session.execute(sa.insert(toy.done).values(work_id=row_id, part=1))
        started.set()
        await gate.wait()
        await piece.session.execute(
            sa.update(toy.work).where(toy.work.c.id == row_id).values(done_by=piece.holder)
        )
        return 1

    runner = Runner(_maker(engine), [Job(name="slow", work=slow)], poll_seconds=POLL)
    runner.start()
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(runner.stop(grace=30))
    await asyncio.sleep(0.1)
    assert not stopping.done()  # waits for the piece in hand
    gate.set()
    await asyncio.wait_for(stopping, 10)
    assert await _undone(engine, toy) == 1
    assert len(await _rows(engine, sa.select(toy.done))) == 1


async def test_a_runner_cancelled_mid_piece_leaves_nothing_and_the_piece_is_done_after_restart(
    engine: AsyncEngine, toy: Toy
) -> None:
    await _add_work(engine, toy, 1)
    started, gate = asyncio.Event(), asyncio.Event()

    async def two_parts(piece: Piece) -> int:
        ids = list(
            await piece.session.scalars(
                claim(sa.select(toy.work.c.id).where(toy.work.c.done_by.is_(None)), limit=1)
            )
        )
        if not ids:
            return 0
        await piece.session.execute(
            sa.insert(toy.done).values(work_id=ids[0], part=1, holder=piece.holder)
        )
        started.set()
        await gate.wait()
        await piece.session.execute(
            sa.insert(toy.done).values(work_id=ids[0], part=2, holder=piece.holder)
        )
        await piece.session.execute(
            sa.update(toy.work).where(toy.work.c.id == ids[0]).values(done_by=piece.holder)
        )
        return 1

    job = Job(name="two_parts", work=two_parts)
    first = Runner(_maker(engine), [job], poll_seconds=POLL)
    first.start()
    await asyncio.wait_for(started.wait(), 10)
    await first.stop(grace=0)  # the stop deadline passes mid-piece: cancelled
    assert await _rows(engine, sa.select(toy.done)) == []
    assert await _undone(engine, toy) == 1
    async with engine.connect() as conn:  # no lock is left behind
        await conn.execute(
            sa.select(toy.work.c.id).with_for_update(nowait=True).where(toy.work.c.id == 1)
        )

    gate.set()
    second = Runner(_maker(engine), [job], poll_seconds=POLL)
    second.start()
    try:
        await eventually(lambda: _has_no_undone(engine, toy))
    finally:
        await second.stop()
    done = await _rows(engine, sa.select(toy.done.c.part, toy.done.c.holder).order_by("part"))
    assert [tuple(r) for r in done] == [(1, second.holder), (2, second.holder)]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def lease_name(engine: AsyncEngine) -> AsyncGenerator[str]:
    name = f"toy_singleton_{uuid.uuid4().hex[:8]}"
    yield name
    async with engine.begin() as conn:
        await conn.execute(sa.delete(JobLease).where(JobLease.name == name))


async def test_a_singleton_runs_once_per_period_across_runners_and_again_after_expiry(
    engines: tuple[AsyncEngine, AsyncEngine], lease_name: str
) -> None:
    clock = Clock(T0)
    runs: list[tuple[str, datetime]] = []

    async def once(piece: Piece) -> int:
        runs.append((piece.holder, piece.now))
        return 0

    job = Job(name=lease_name, work=once, once_every=timedelta(hours=1))
    runners = [Runner(_maker(e), [job], poll_seconds=POLL, clock=clock) for e in engines]
    for runner in runners:
        runner.start()
    try:

        async def ran(times: int) -> bool:
            return len(runs) >= times

        await eventually(lambda: ran(1))
        await asyncio.sleep(0.3)  # many polls of both runners
        assert len(runs) == 1
        clock.now = T0 + timedelta(minutes=59)
        await asyncio.sleep(0.2)
        assert len(runs) == 1
        clock.now = T0 + timedelta(hours=1)
        await eventually(lambda: ran(2))
        await asyncio.sleep(0.3)
    finally:
        for runner in runners:
            await runner.stop()
    assert [at for _holder, at in runs] == [T0, T0 + timedelta(hours=1)]


@pytest.mark.usefixtures("runner_log")
async def test_a_failed_singleton_gives_its_lease_back_and_is_retried(
    engine: AsyncEngine, lease_name: str
) -> None:
    attempts: list[datetime] = []

    async def flaky(piece: Piece) -> int:
        attempts.append(piece.now)
        if len(attempts) == 1:
            raise ConnectionError("database went away")
        return 0

    runner = Runner(
        _maker(engine),
        [Job(name=lease_name, work=flaky, once_every=timedelta(hours=1))],
        poll_seconds=POLL,
        clock=lambda: T0,
    )
    with structlog.testing.capture_logs() as logs:
        runner.start()
        try:

            async def retried() -> bool:
                return len(attempts) >= 2

            await eventually(retried)
            await asyncio.sleep(0.2)
        finally:
            await runner.stop()
    assert len(attempts) == 2  # then the lease holds it off for the period
    assert [e["job"] for e in logs if e["event"] == "job_failed"] == [lease_name]


async def test_leases_exclude_until_expiry_and_only_their_holder_renews_or_releases(
    engine: AsyncEngine, lease_name: str
) -> None:
    def minutes(n: int) -> datetime:
        return T0 + timedelta(minutes=n)

    async with _maker(engine)() as session:
        assert await take_lease(session, lease_name, holder="a", now=T0, until=minutes(10))
        assert not await take_lease(session, lease_name, holder="b", now=minutes(5), until=T0)
        assert not await take_lease(session, lease_name, holder="a", now=minutes(5), until=T0)
        assert await renew_lease(session, lease_name, holder="a", until=minutes(20))
        assert not await take_lease(session, lease_name, holder="b", now=minutes(15), until=T0)
        assert await take_lease(session, lease_name, holder="b", now=minutes(20), until=minutes(30))
        assert not await renew_lease(session, lease_name, holder="a", until=minutes(40))
        await release_lease(session, lease_name, holder="a", now=minutes(21))
        assert not await take_lease(session, lease_name, holder="c", now=minutes(21), until=T0)
        await release_lease(session, lease_name, holder="b", now=minutes(21))
        assert await take_lease(session, lease_name, holder="c", now=minutes(21), until=T0)
        await session.commit()


async def test_the_idempotency_purge_is_a_singleton_job_of_the_service(
    engine: AsyncEngine,
) -> None:
    """The purge that ran as its own asyncio loop is the runner's first job: it deletes
    expired Idempotency-Key records, one runner at a time, every ten minutes."""
    assert PURGE_IDEMPOTENCY_KEYS in service_jobs()
    scope = f"runner-test-{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(sa.delete(JobLease).where(JobLease.name == PURGE_IDEMPOTENCY_KEYS.name))
        await conn.execute(
            sa.insert(IdempotencyRecord),
            [
                {
                    "scope": scope,
                    "key": key,
                    "request_hash": "0" * 64,
                    "status_code": 201,
                    "headers": {},
                    "body": b"{}",
                    "expires_at": utcnow() + timedelta(hours=hours),
                }
                for key, hours in (("expired", -1), ("fresh", 24))
            ],
        )
    runner = Runner(_maker(engine), service_jobs(), poll_seconds=POLL)
    try:
        assert await runner.run(PURGE_IDEMPOTENCY_KEYS) >= 1
        left = await _rows(
            engine, sa.select(IdempotencyRecord.key).where(IdempotencyRecord.scope == scope)
        )
        assert [r[0] for r in left] == ["fresh"]
        assert await runner.run(PURGE_IDEMPOTENCY_KEYS) == 0  # the lease holds the next run off
        [lease] = await _rows(
            engine,
            sa.select(JobLease.holder, JobLease.expires_at - sa.func.now()).where(
                JobLease.name == PURGE_IDEMPOTENCY_KEYS.name
            ),
        )
        assert lease[0] == runner.holder
        assert timedelta(minutes=9) < lease[1] <= timedelta(minutes=10)
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.delete(IdempotencyRecord).where(IdempotencyRecord.scope == scope))


async def test_serve_lifespan_starts_the_runner_unless_run_workers_is_false(
    migrated_url: str,
) -> None:
    off = create_app(Settings(DATABASE_URL=migrated_url, RUN_WORKERS=False))
    async with off.router.lifespan_context(off):
        assert off.state.runner is None
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("job:")]

    on = create_app(Settings(DATABASE_URL=migrated_url, RUNNER_POLL_SECONDS=3600))
    async with on.router.lifespan_context(on):
        runner = on.state.runner
        assert isinstance(runner, Runner)
        assert runner.poll_seconds == 3600
        assert [job.name for job in runner.jobs] == [job.name for job in service_jobs()]
        tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("job:")]
        assert tasks
    assert runner.stopping.is_set()
    assert all(t.done() for t in tasks)


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_runs_failures_items_and_durations_are_counted_by_job(
    engine: AsyncEngine, toy: Toy
) -> None:
    """Issue 16 item 5: `cle_runner_job_runs_total` by job and outcome (done, idle, failed),
    the items done, and the duration of the runs that did something."""
    await _add_work(engine, toy, 7)
    suffix = uuid.uuid4().hex[:8]
    worker, broken = f"toy_{suffix}", f"broken_{suffix}"
    failures: list[int] = []

    async def boom(_piece: Piece) -> int:
        failures.append(1)
        raise RuntimeError("no")

    runner = Runner(
        _maker(engine),
        [toy_job(toy, worker, batch=5), Job(name=broken, work=boom)],
        poll_seconds=POLL,
    )

    async def enough() -> bool:
        return (
            _sample("cle_runner_job_runs_total", job=worker, outcome="idle") >= 1
            and _sample("cle_runner_job_runs_total", job=broken, outcome="failed") >= 2
        )

    runner.start()
    try:
        await eventually(enough)
    finally:
        await runner.stop()
    done = _sample("cle_runner_job_runs_total", job=worker, outcome="done")
    assert done >= 1
    assert _sample("cle_runner_job_items_total", job=worker) == 7
    assert _sample("cle_runner_job_duration_seconds_count", job=worker) == done
    assert _sample("cle_runner_job_runs_total", job=worker, outcome="failed") == 0
    assert _sample("cle_runner_job_runs_total", job=broken, outcome="failed") == len(failures)
    assert _sample("cle_runner_job_duration_seconds_count", job=broken) == len(failures)
    assert _sample("cle_runner_job_runs_total", job=broken, outcome="done") == 0
