"""The ONE translation of the visibility rule (`rules.permissions.sight_grounds`, `may_see`) to
SQL over `event e`: every read and every row lock of an event filters with `seen`.

The clause's shape follows the caller's grounds and holds no switch parameters, so each shape
is one statement whose generic plan PostgreSQL keeps (bench/README.md, fourth round). A
property test (tests/api/test_visibility_property.py) holds it equal to `may_see`.
"""

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from app.core.auth import Principal
from app.rules.permissions import INVOLVING, Sight, sight_grounds

# Each ground of `rules.permissions.Sight` as SQL; `{me}` is the caller's user id, `{dept}`
# their department code.
GROUND_SQL: Final[Mapping[Sight, str]] = MappingProxyType(
    {
        Sight.REPORTED: "e.created_by = {me}",
        Sight.NAMED_REPORTER: "e.reporter_user_id = {me}",
        Sight.LEADS: "e.lead_department = {dept}",
        Sight.COOPERATES: "e.cooperating_departments @> ARRAY[{dept}]",
        Sight.OWNS_STEP: (
            "EXISTS (SELECT 1 FROM plan_step s WHERE s.event_id = e.id AND s.owner_id = {me})"
        ),
        Sight.OWNS_ACTION: (
            "EXISTS (SELECT 1 FROM improvement_action a"
            " WHERE a.event_id = e.id AND a.department = {dept})"
        ),
    }
)
_NEEDS_DEPARTMENT: Final = frozenset({Sight.LEADS, Sight.COOPERATES, Sight.OWNS_ACTION})


class Params:
    """The parameters of a statement built from text clauses, numbered for asyncpg's prepared
    statements (`$1::uuid`)."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


class NamedParams(Params):
    """`Params` bound by SQLAlchemy (`CAST(:p1 AS uuid)`), for a `sa.text` clause."""

    __slots__ = ()

    def __call__(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"CAST(:p{len(self.values)} AS {cast})"

    def bound(self) -> dict[str, Any]:
        return {f"p{n}": value for n, value in enumerate(self.values, start=1)}


@dataclass(frozen=True, slots=True)
class Seen:
    """How a principal sees events, as SQL over `event e` with the statement's parameters."""

    where: str | None  # one of their grounds holds (`may_see`); None: they see every event
    involved: str | None  # one of the INVOLVING grounds (the staff view); None: never involved
    # `involved` for a row that `where` admits, its subqueries run for the caller's own reports
    # only: a row they did not report is seen on an involving ground, so involved (review of
    # issue 10, item 6). Read it once per row (a LATERAL), not once per use.
    involved_row: str | None


@functools.lru_cache(maxsize=256)
def _render(grounds: tuple[Sight, ...], me: str, dept: str) -> Seen:
    clauses = [GROUND_SQL[ground].format(me=me, dept=dept) for ground in grounds]
    involving = [c for ground, c in zip(grounds, clauses, strict=True) if ground in INVOLVING]
    if not involving:
        return Seen("(" + " OR ".join(clauses) + ")", None, None)
    involved = "(" + " OR ".join(involving) + ")"
    involved_row = involved
    # Seen as its reporter (took it in, or named: `Sight.NAMED_REPORTER`) or else involved.
    reported = [c for ground, c in zip(grounds, clauses, strict=True) if ground not in INVOLVING]
    if reported:
        as_reporter = " OR ".join(reported)
        involved_row = f"(CASE WHEN {as_reporter} THEN {involved} ELSE true END)"
    return Seen("(" + " OR ".join(clauses) + ")", involved, involved_row)


def seen(principal: Principal, p: Params) -> Seen:
    """The principal's grounds (`rules.permissions.sight_grounds`) as SQL, and for handlers and
    heads whether they are involved (`rules.views.event_view`)."""
    grounds = sight_grounds(
        principal.roles,
        has_department=principal.department is not None,
        person=not principal.service_account,
    )
    if Sight.EVERY_EVENT in grounds:
        return Seen(None, None, None)
    me = p(principal.user_id, "uuid")
    dept = ""
    if not _NEEDS_DEPARTMENT.isdisjoint(grounds):
        dept = p(principal.department, "varchar")
    return _render(grounds, me, dept)
