"""The policy store: versioned documents, the one in force cached briefly per process (R3.2)."""

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import Database, SessionDep
from app.core.errors import AppError, NotFound
from app.directory.service import department_codes_cached, known_department_codes
from app.policy.document import (
    DEFAULT_POLICY_DOCUMENT,
    PolicyInvalid,
    parse_policy,
    policy_document,
)
from app.policy.models import PolicyVersion
from app.policy.schemas import (
    DeadlinesRead,
    EvaluateRequest,
    EvaluateResult,
    GradingRead,
    PolicyRead,
    RoutingRead,
)
from app.rules import deadlines, grading, lifecycle, routing
from app.rules.lifecycle import EventSnapshot
from app.rules.policy import Policy
from app.rules.vocabulary import Category, Status

CACHE_SECONDS = 5.0


class PolicyRejected(AppError):
    status, type, title = 422, "policy-invalid", "The policy document is not valid"


class UnknownTaxonomy(AppError):
    status, type, title = 422, "validation-error", "Not in the policy's taxonomy"


class UnknownDepartment(AppError):
    status, type, title = 422, "validation-error", "Unknown department code"


@dataclass
class _Cached:
    policy: Policy | None = None
    loaded_at: float = 0.0
    # After a PUT in this process, never cache an older version (a request that read the
    # table before the PUT committed must not pin the old policy for CACHE_SECONDS).
    min_version: int = 0
    refreshing: bool = False


_cache = _Cached()


def invalidate_cache(min_version: int = 0) -> None:
    _cache.policy = None
    _cache.min_version = max(_cache.min_version, min_version) if min_version else 0


async def ensure_default_policy(session: AsyncSession) -> None:
    """Load the shipped default policy as version 1 on first start (product.md section 3)."""
    # ON CONFLICT: several workers may start on an empty database at once.
    await session.execute(
        pg_insert(PolicyVersion)
        .values(version=1, document=dict(DEFAULT_POLICY_DOCUMENT), note="default policy")
        .on_conflict_do_nothing(index_elements=[PolicyVersion.version])
    )


def _cached() -> Policy | None:
    if _cache.policy is not None and time.monotonic() - _cache.loaded_at < CACHE_SECONDS:
        return _cache.policy
    return None


async def current_policy(session: AsyncSession) -> Policy:
    """The policy in force (highest version), cached for a few seconds per process."""
    cached = _cached()
    if cached is not None:
        return cached
    row = (
        await session.execute(
            sa.select(PolicyVersion.version, PolicyVersion.document)
            .order_by(PolicyVersion.version.desc())
            .limit(1)
        )
    ).one_or_none()
    if row is None:
        await ensure_default_policy(session)
        return await current_policy(session)
    policy = parse_policy(row.document, version=row.version)
    if row.version >= _cache.min_version:
        _cache.policy, _cache.loaded_at = policy, time.monotonic()
    return policy


async def policy_version(session: AsyncSession, version: int) -> Policy:
    document = await session.scalar(
        sa.select(PolicyVersion.document).where(PolicyVersion.version == version)
    )
    if document is None:
        raise NotFound(f"No policy version {version}")
    return parse_policy(document, version=version)


async def read_version(session: AsyncSession, version: int | None = None) -> PolicyRead:
    query = sa.select(PolicyVersion)
    query = (
        query.where(PolicyVersion.version == version)
        if version is not None
        else query.order_by(PolicyVersion.version.desc()).limit(1)
    )
    row = await session.scalar(query)
    if row is None:
        raise NotFound(f"No policy version {version}")
    return PolicyRead.model_validate(row)


async def put_policy(
    session: AsyncSession, document: dict[str, object], *, note: str | None, actor_id: uuid.UUID
) -> PolicyRead:
    """Validate a new policy document (every problem listed) and store it as the next version."""
    known = await known_department_codes(session)
    try:
        policy = parse_policy(document, known_departments=known)
    except PolicyInvalid as exc:
        raise PolicyRejected(
            f"{len(exc.problems)} problem(s) in the policy document",
            errors=[{"field": p.path, "message": p.message} for p in exc.problems],
        ) from exc
    # Serialise writers so two concurrent PUTs cannot both take the same version number.
    await session.execute(sa.text("LOCK TABLE policy_version IN SHARE ROW EXCLUSIVE MODE"))
    latest = await session.scalar(sa.select(sa.func.max(PolicyVersion.version))) or 0
    await session.execute(
        sa.insert(PolicyVersion).values(
            version=latest + 1, document=policy_document(policy), note=note, created_by=actor_id
        )
    )
    invalidate_cache(min_version=latest + 1)
    return await read_version(session, latest + 1)


def check_taxonomy(policy: Policy, category: Category, subcategory: str) -> None:
    """R2: the subcategory must belong to the category in the policy's taxonomy."""
    allowed = policy.taxonomy.get(category.value, ())
    if subcategory not in allowed:
        raise UnknownTaxonomy(
            f"{subcategory!r} is not a subcategory of {category.value}",
            errors=[{"field": "subcategory", "message": f"allowed: {', '.join(allowed)}"}],
        )


async def check_involved(session: AsyncSession, codes: list[str]) -> None:
    """Involved departments of a hypothetical event must exist, like at intake (R3.1.2)."""
    known = await department_codes_cached(session)
    unknown = [code for code in dict.fromkeys(codes) if code not in known]
    if unknown:
        raise UnknownDepartment(
            f"Unknown department code(s): {', '.join(unknown)}",
            errors=[
                {"field": "involved_departments", "message": f"unknown department code {code}"}
                for code in unknown
            ],
        )


def evaluate(policy: Policy, data: EvaluateRequest, *, now: datetime) -> EvaluateResult:
    """Grade, route and time a hypothetical event; nothing is saved (product.md section 3)."""
    check_taxonomy(policy, data.category, data.subcategory)
    graded = grading.grade(
        data.impact.facts(), category=data.category, urgent=data.urgent, policy=policy
    )
    routed = routing.route(
        category=data.category,
        subcategory=data.subcategory,
        involved=data.involved_departments,
        policy=policy,
    )
    reported_at = data.reported_at or now
    respond = deadlines.respond_by(reported_at, urgent=data.urgent, policy=policy)
    resolve = deadlines.resolve_by(reported_at, severity=graded.severity, policy=policy)
    return EvaluateResult(
        policy_version=policy.version,
        severity=graded.severity,
        grading=GradingRead(
            severity=graded.severity, rule_ids=list(graded.rule_ids), policy_version=policy.version
        ),
        routing=RoutingRead(
            lead_department=routed.lead,
            cooperating_departments=list(routed.cooperating),
            rule_id=routed.rule_id,
        ),
        deadlines=DeadlinesRead(respond_by=respond, resolve_by=resolve),
        assignment_missing=lifecycle.gate(
            Status.ASSIGNED,
            EventSnapshot(
                status=Status.ASSIGNED,
                urgent=data.urgent,
                category=data.category,
                subcategory=data.subcategory,
                severity=graded.severity,
                impact_recorded=True,
                lead_department=routed.lead,
                cooperating_departments=routed.cooperating,
            ),
            policy,
        ),
    )


async def policy_in_force(database: Database) -> Policy:
    """`current_policy` for the hot paths, which have no request session: one is opened only
    when the cache is due, by one request while the others go on with the policy they have
    (a change made in this process empties the cache, so nobody goes on with that one)."""
    cached = _cached()
    if cached is not None:
        return cached
    if _cache.refreshing and _cache.policy is not None:
        return _cache.policy
    _cache.refreshing = True
    try:
        async with database.session_maker() as session, session.begin():
            return await current_policy(session)
    finally:
        _cache.refreshing = False


async def _policy_dep(session: SessionDep) -> Policy:
    return await current_policy(session)


PolicyDep = Annotated[Policy, Depends(_policy_dep)]
