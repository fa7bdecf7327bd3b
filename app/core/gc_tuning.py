"""The garbage collector's settings while a process serves (issue 5: measured, not guessed)."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def tuned_gc(gen0_threshold: int) -> Iterator[None]:
    """Freeze what start-up built and collect the youngest generation less often.

    * The heap after start-up (FastAPI, SQLAlchemy and pydantic schemas: about 140,000 tracked
      objects) never becomes garbage, yet every full collection walks it; `gc.freeze()` moves
      it out of the collector's sight.
    * A request allocates a few hundred container objects that reference counting frees. With
      Python's default threshold (700) a young collection runs every few requests and promotes
      the objects of the requests in flight, which the older generations then walk again.

    Both cut get by id's CPU per request by about a fifth (bench/README.md). `gen0_threshold`
    0 leaves the collector as Python sets it.

    The settings are the process's: the first of overlapping uses (two apps served by one
    process, as tests do) applies them and the last one out restores what was there before.
    """
    global _users, _previous
    if gen0_threshold <= 0:
        yield
        return
    if _users == 0:
        _previous = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(gen0_threshold, *_previous[1:])
    _users += 1
    try:
        yield
    finally:
        _users -= 1
        if _users == 0:
            gc.set_threshold(*_previous)
            gc.unfreeze()


_users = 0
_previous: tuple[int, int, int] = gc.get_threshold()
