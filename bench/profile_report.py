"""Summarise a py-spy `--format raw` profile (collapsed stacks): where the service's CPU goes.

`python bench/profile_report.py bench/results/latest/profile-intake.txt`
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")

# Buckets by the file a frame comes from, most specific first.
BUCKETS = [
    ("app: transaction/idempotency middleware", "app/core/transaction.py"),
    ("app: auth", "app/core/auth.py"),
    ("app: access log", "app/core/logging.py"),
    ("app: events repository (SQL build)", "app/events/repository/"),
    ("app: events intake", "app/events/intake.py"),
    ("app: events reading", "app/events/reading.py"),
    ("app: events views (row -> model)", "app/events/views.py"),
    ("app: timeline", "app/events/timeline.py"),
    ("app: outbox", "app/outbox/"),
    ("app: policy", "app/policy/"),
    ("app: rules", "app/rules/"),
    ("app: other", "/app/"),
    ("sqlalchemy", "sqlalchemy/"),
    ("asyncpg", "asyncpg/"),
    ("pydantic", "pydantic"),
    ("fastapi", "fastapi/"),
    ("starlette", "starlette/"),
    ("uvicorn", "uvicorn/"),
    ("structlog", "structlog/"),
    ("uuid_utils / uuid", "uuid"),
    ("json", "json/"),
    ("asyncio / uvloop", "asyncio/"),
]


def _parse(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return m.group("func"), m.group("file")


def _short(path: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _bucket(path: str) -> str:
    for name, needle in BUCKETS:
        if needle in path:
            return name
    return "other (stdlib, C, interpreter)"


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    total = 0
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    bucket_self: Counter[str] = Counter()
    bucket_incl: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_parse(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        names = {f"{func} ({_short(file)})" for func, file in frames}
        for name in names:
            inclusive[name] += count
        for b in {_bucket(file) for _func, file in frames}:
            bucket_incl[b] += count
        func, file = frames[-1]
        self_time[f"{func} ({_short(file)})"] += count
        bucket_self[_bucket(file)] += count

    def pct(c: Counter[str], n: int) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in c.most_common(n)] if total else []

    return {
        "samples": total,
        "self_pct_by_area": pct(bucket_self, 40),
        "inclusive_pct_by_area": pct(bucket_incl, 40),
        "top_inclusive": pct(inclusive, top * 2),
        "top_self": pct(self_time, top),
    }


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps({arg: summarize(Path(arg))}, indent=1))
