"""The failed-authentication guard on its own (issue 15, item 7; `app.core.abuse`)."""

from app.core.abuse import AuthFailureGuard, auth_failure_guard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_is_refused_at_the_limit_for_the_window() -> None:
    clock = Clock()
    guard = AuthFailureGuard(limit=3, window=60, clock=clock)
    guard.failed("10.0.0.1")
    guard.failed("10.0.0.1")
    assert not guard.blocked
    assert guard.retry_after("10.0.0.1") is None
    guard.failed("10.0.0.1")
    assert guard.retry_after("10.0.0.1") == 60
    assert guard.retry_after("10.0.0.2") is None  # another client is not refused
    clock.now += 59.5
    assert guard.retry_after("10.0.0.1") == 1
    clock.now += 0.5
    assert guard.retry_after("10.0.0.1") is None
    assert not guard.blocked  # forgotten once over


def test_failures_count_in_a_fixed_window_from_the_first() -> None:
    """Failures spread wider than the window never add up to the limit."""
    clock = Clock()
    guard = AuthFailureGuard(limit=3, window=60, clock=clock)
    guard.failed("10.0.0.1")
    clock.now += 40
    guard.failed("10.0.0.1")
    clock.now += 21  # the first failure's window is over: its count is gone
    guard.failed("10.0.0.1")
    guard.failed("10.0.0.1")
    assert guard.retry_after("10.0.0.1") is None
    guard.failed("10.0.0.1")
    assert guard.retry_after("10.0.0.1") == 60


def test_memory_is_bounded_by_max_clients() -> None:
    clock = Clock()
    guard = AuthFailureGuard(limit=1, window=60, clock=clock, max_clients=100)
    for n in range(1000):
        guard.failed(f"10.0.{n // 256}.{n % 256}")
        clock.now += 0.01
    assert len(guard.blocked) <= 100
    assert len(guard.failures) <= 100
    assert guard.retry_after("10.0.3.231") is not None  # the latest are still refused


def test_a_limit_of_zero_turns_the_guard_off() -> None:
    assert auth_failure_guard(0, 60) is None
    guard = auth_failure_guard(5, 30)
    assert guard is not None
    assert (guard.limit, guard.window) == (5, 30)
