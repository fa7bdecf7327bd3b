"""The collector's settings while serving (issue 5): applied inside, restored after."""

import gc

from app.core.config import Settings
from app.core.gc_tuning import tuned_gc
from app.main import create_app


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


async def test_the_app_serves_with_the_configured_collector(migrated_url: str) -> None:
    app = create_app(Settings(DATABASE_URL=migrated_url, GC_GEN0_THRESHOLD=12_345))
    before = gc.get_threshold()
    async with app.router.lifespan_context(app):
        assert gc.get_threshold()[0] == 12_345
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
