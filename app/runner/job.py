"""A periodic job and the piece of work it does at a time (issue 12, item 1)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True, kw_only=True)
class Piece:
    """What one piece of a job's work gets from the runner.

    `session` is inside the piece's own transaction: committed when the work returns, rolled
    back when it raises or is cancelled, so a piece is done entirely or not at all. `now` is
    the runner's (injectable) clock; `holder` names this runner (for leases and claims).
    """

    session: AsyncSession
    now: datetime
    holder: str
    # Called after the piece's transaction has committed (not when it rolls back): e.g. to
    # wake another job for the rows this piece made visible.
    on_commit: list[Callable[[], None]] = field(default_factory=list)


Work = Callable[[Piece], Awaitable[int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A periodic job run by every runner.

    `work` does ONE piece in the transaction it is given and returns how many items it did;
    the runner calls it again, each time in a new transaction, while it returns more than 0
    (at most `max_pieces` times per run), then waits for the next poll. Work it shares with
    other runners is claimed (`claims.claim`), so each item is done once.

    `once_every` makes the job a singleton: one runner at a time, at most once per that
    period across every runner on the database (a `job_lease` named after the job, taken
    for the period and renewed between pieces). Without it, every runner runs the job on
    every poll.
    """

    name: str
    work: Work
    once_every: timedelta | None = None
    max_pieces: int = 100
    # This job's own poll interval (None: the runner's `RUNNER_POLL_SECONDS`), for work that
    # must start within a second of being written (webhook delivery, issue 13).
    poll_seconds: float | None = None
    # A piece that did fewer items than this ends the run until the next poll (it has caught
    # up), so a job that polls often does not spin through near-empty transactions.
    full_piece: int = 1
    # Called once when the runner stops, after the job's last piece (to close what the job
    # holds across runs, such as an HTTP connection pool).
    close: Callable[[], Awaitable[None]] | None = None
    # Returns when the job has new work: the runner then runs it at once instead of waiting
    # out the poll (the poll still finds work nobody announced).
    wakeup: Callable[[], Awaitable[object]] | None = None
