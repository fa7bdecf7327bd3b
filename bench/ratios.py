"""How the bench compares two things measured in turn (bench/run.py, bench/webhooks.py)."""

from __future__ import annotations

import statistics
from typing import Any


def paired_ratio(
    a: list[dict[str, Any]], b: list[dict[str, Any]], key: str
) -> tuple[float | None, list[float]]:
    """The median of the repetitions' own ratios a[i] / b[i] (each pair measured back to
    back), and those ratios. On this VM the speed of the whole machine drifts by 10-20 %
    between minutes; a pair shares its minute, so its ratio keeps little of the drift, and
    the median drops the pair a stall (a checkpoint, an autovacuum) fell on."""
    pairs = [
        round(x[key] / y[key], 3)
        for x, y in zip(a, b, strict=False)
        if x.get(key) is not None and y.get(key)
    ]
    return (round(statistics.median(pairs), 3) if pairs else None), pairs


def alternate(items: list[Any], rep: int) -> list[Any]:
    """`items` in order on even repetitions, reversed on odd ones (A B, B A, ...): a drift
    over the run favours neither side."""
    return items if rep % 2 == 0 else items[::-1]
