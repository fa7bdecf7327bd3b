"""The collector's settings while serving (issue 5): applied inside, restored after."""

import gc

from app.core.gc_tuning import tuned_gc


def test_serving_freezes_the_start_up_heap_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with tuned_gc(20_000):
        assert gc.get_threshold() == (20_000, *before[1:])
        assert gc.get_freeze_count() > 1_000
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_zero_leaves_the_collector_as_python_sets_it() -> None:
    before = gc.get_threshold()
    with tuned_gc(0):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_overlapping_uses_apply_once_and_restore_after_the_last() -> None:
    before = gc.get_threshold()
    with tuned_gc(20_000):
        frozen = gc.get_freeze_count()
        with tuned_gc(20_000):
            assert gc.get_threshold()[0] == 20_000
        assert gc.get_threshold()[0] == 20_000  # the outer use still serves
        assert gc.get_freeze_count() == frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
