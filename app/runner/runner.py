"""The runner: registered jobs as asyncio tasks inside a process (issue 12, item 1).

Each job has its own task, so a slow or failing job never delays another. A task runs its
job, then waits one poll (`RUNNER_POLL_SECONDS`, with a little jitter so replicas drift
apart). A run is a series of pieces, each in its own transaction (`job.Piece`). A run that
raises is logged as one structured line (`job_failed`, with the job's name and the error)
and tried again after a backoff that doubles per failure in a row, starting at one poll; the
process and the other jobs go on. Every run is counted in the metrics (`cle_runner_job_*`:
done, idle or failed, with the duration of those that did something).

Stopping: `stop()` lets each task finish the piece in hand and start no other, and cancels
what is still running after `grace` seconds. A cancelled piece's transaction is rolled back,
so no piece is ever half-written; its work is done by the next run, here or elsewhere.
"""

import asyncio
import contextlib
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core import metrics
from app.core.clock import utcnow
from app.core.outage import database_unavailable
from app.runner.claims import release_lease, renew_lease, take_lease
from app.runner.job import Job, Piece

log = structlog.get_logger(__name__)

# The longest wait between two attempts of a failing job (unless the poll is longer).
MAX_BACKOFF_SECONDS = 300.0
# How long a stop waits for the pieces in hand before cancelling them.
STOP_GRACE_SECONDS = 10.0


def backoff(failures: int, poll_seconds: float) -> float:
    """Seconds before the next attempt after `failures` failed runs in a row: one poll, then
    twice as long each time, at most `MAX_BACKOFF_SECONDS` (or one poll, if longer)."""
    cap = max(MAX_BACKOFF_SECONDS, poll_seconds)
    return float(min(poll_seconds * 2 ** min(failures - 1, 32), cap))


def runner_id() -> str:
    """A name for this runner, unique across processes and machines (lease holder)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Runner:
    """Runs `jobs` on the database behind `session_maker` until stopped.

    `clock` is the time handed to every piece and used for leases (injected in tests); the
    waits between polls are real time.
    """

    def __init__(
        self,
        session_maker: async_sessionmaker[AsyncSession],
        jobs: Sequence[Job],
        *,
        poll_seconds: float = 15.0,
        clock: Callable[[], datetime] = utcnow,
        holder: str | None = None,
    ) -> None:
        if len({job.name for job in jobs}) != len(jobs):
            raise ValueError("job names must be unique")
        self.session_maker = session_maker
        self.jobs = tuple(jobs)
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.holder = holder or runner_id()
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start one task per job (in the running event loop)."""
        if self._tasks:
            raise RuntimeError("runner already started")
        self._tasks = [
            asyncio.create_task(self._loop(job), name=f"job:{job.name}") for job in self.jobs
        ]
        log.info(
            "runner_started",
            holder=self.holder,
            jobs=[job.name for job in self.jobs],
            poll_seconds=self.poll_seconds,
        )

    def request_stop(self) -> None:
        """Ask every task to stop after the piece in hand (safe from a signal handler)."""
        self.stopping.set()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop: finish the pieces in hand, cancel whatever still runs after `grace` seconds
        (its transaction is rolled back), and return once every task has ended."""
        self.request_stop()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _done, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                log.error("job_task_died", task=task.get_name(), exc_info=task.exception())
        for job in self.jobs:
            if job.close is not None:
                try:
                    await job.close()
                except Exception:
                    log.exception("job_close_failed", job=job.name)
        log.info("runner_stopped", holder=self.holder, cancelled=[t.get_name() for t in late])

    async def _loop(self, job: Job) -> None:
        failures = 0
        while not self.stopping.is_set():
            started = time.perf_counter()
            try:
                items = await self.run(job)
            except Exception as exc:
                metrics.job_ran(job.name, items=None, seconds=time.perf_counter() - started)
                failures += 1
                delay = backoff(failures, self.poll_seconds)
                log.error(
                    "job_failed",
                    job=job.name,
                    error=f"{type(exc).__name__}: {exc}",
                    failures=failures,
                    retry_in_seconds=delay,
                    # PostgreSQL unreachable is said in one line; a bug gets its traceback.
                    exc_info=database_unavailable(exc) is None,
                )
            else:
                metrics.job_ran(job.name, items=items, seconds=time.perf_counter() - started)
                failures = 0
                delay = (job.poll_seconds or self.poll_seconds) * random.uniform(0.9, 1.1)
            await self._idle(job, delay)

    async def _idle(self, job: Job, delay: float) -> None:
        """Wait `delay` seconds, or less if a stop is asked for or the job is woken."""
        waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(self.stopping.wait())]
        if job.wakeup is not None:
            waiters.append(asyncio.ensure_future(job.wakeup()))
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def run(self, job: Job) -> int:
        """One run of `job`: its pieces until one does nothing, `max_pieces` were done or a stop
        is asked for. A singleton runs only when its lease is free (returns 0 otherwise); a
        failed run gives the lease back so the next attempt need not wait for it to expire.
        Returns how many items the run did."""
        if job.once_every is None:
            return await self._pieces(job)
        if self.stopping.is_set():
            return 0  # a lease taken now would hold the job off for a period, undone
        async with self.session_maker() as session, session.begin():
            now = self.clock()
            until = now + job.once_every
            if not await take_lease(session, job.name, holder=self.holder, now=now, until=until):
                return 0
        try:
            return await self._pieces(job)
        except Exception:
            with contextlib.suppress(Exception):
                async with self.session_maker() as session, session.begin():
                    await release_lease(session, job.name, holder=self.holder, now=self.clock())
            raise

    async def _pieces(self, job: Job) -> int:
        started = time.perf_counter()
        total = pieces = 0
        while pieces < job.max_pieces and not self.stopping.is_set():
            lease = job.once_every
            if pieces and lease is not None and not await self._renew(job.name, lease):
                break
            async with self.session_maker() as session, session.begin():
                piece = Piece(session=session, now=self.clock(), holder=self.holder)
                done = await job.work(piece)
            for committed in piece.on_commit:
                committed()
            pieces += 1
            total += done
            if done < max(job.full_piece, 1):
                break
        if total:
            log.info(
                "job_ran",
                job=job.name,
                items=total,
                pieces=pieces,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
        return total

    async def _renew(self, name: str, period: timedelta) -> bool:
        """Keep a singleton's lease for another period before its next piece."""
        async with self.session_maker() as session, session.begin():
            until = self.clock() + period
            return await renew_lease(session, name, holder=self.holder, until=until)
