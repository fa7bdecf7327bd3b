"""The policy store: versioned documents, the one in force cached briefly per process (R3.2).
Its SQL is in `app.policy.repository`."""

import uuid
from datetime import datetime
from typing import Annotated, Final

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.caches import RefreshingCache, cache
from app.core.db import Database, SessionDep
from app.core.errors import AppError, NotFound, Unprocessable
from app.directory.service import department_codes_cached, known_department_codes
from app.policy import repository
from app.policy.document import (
    DEFAULT_POLICY_DOCUMENT,
    PolicyInvalid,
    parse_policy,
    policy_document,
)
from app.policy.schemas import (
    DeadlinesRead,
    EvaluateRequest,
    EvaluateResult,
    GradingRead,
    LadderRungRead,
    PolicyRead,
    RoutingRead,
)
from app.rules import clocks, deadlines, grading, lifecycle, routing
from app.rules.clocks import Stage
from app.rules.lifecycle import EventSnapshot
from app.rules.policy import Policy
from app.rules.vocabulary import Category, Status

CACHE_SECONDS: Final = 5.0
_IN_FORCE: Final = "in_force"
# The policy in force. After a PUT in this process no older version is kept: a request that
# read the table before the PUT committed must not pin the old policy for CACHE_SECONDS.
_policies: RefreshingCache[str, Policy] = cache("policy", ttl=CACHE_SECONDS, maxsize=1)


class PolicyRejected(AppError):
    status, type, title = 422, "policy-invalid", "The policy document is not valid"


class UnknownTaxonomy(Unprocessable):
    title = "Not in the policy's taxonomy"


class UnknownDepartment(Unprocessable):
    title = "Unknown department code"


def invalidate_cache(min_version: int = 0) -> None:
    """Forget the policy in force; with `min_version`, keep no older version from now on."""
    _policies.invalidate(
        accept=(lambda policy: policy.version >= min_version) if min_version else None
    )


async def ensure_default_policy(session: AsyncSession) -> None:
    """Load the shipped default policy as version 1 on first start (product.md section 3)."""
    await repository.insert_default(session, DEFAULT_POLICY_DOCUMENT)


async def _load_in_force(session: AsyncSession) -> Policy:
    latest = await repository.latest_document(session)
    if latest is None:
        await ensure_default_policy(session)
        latest = await repository.latest_document(session)
        if latest is None:  # pragma: no cover - the insert above guarantees a version
            raise NotFound("No policy version")
    version, document = latest
    return parse_policy(document, version=version)


def _in_force(policy: Policy | None) -> Policy:
    if policy is None:  # pragma: no cover - the loaders never answer None
        raise NotFound("No policy in force")
    return policy


async def current_policy(session: AsyncSession) -> Policy:
    """The policy in force (highest version), cached for a few seconds per process."""
    policy = _policies.fresh(_IN_FORCE)
    if policy is None:
        policy = await _policies.get(_IN_FORCE, lambda _: _load_in_force(session))
    return _in_force(policy)


async def policy_in_force(database: Database) -> Policy:
    """`current_policy` for the hot paths, which have no request session: one is opened only
    when the cache is due, by one request while the others go on with the policy they have
    (a change made in this process empties the cache, so nobody goes on with that one)."""
    policy = _policies.fresh(_IN_FORCE)
    if policy is None:

        async def load(_: Policy | None) -> Policy:
            async with database.session_maker() as session, session.begin():
                return await _load_in_force(session)

        policy = await _policies.get(_IN_FORCE, load)
    return _in_force(policy)


async def policy_version(session: AsyncSession, version: int) -> Policy:
    document = await repository.document(session, version)
    if document is None:
        raise NotFound(f"No policy version {version}")
    return parse_policy(document, version=version)


async def read_version(session: AsyncSession, version: int | None = None) -> PolicyRead:
    row = await repository.version_row(session, version)
    if row is None:
        raise NotFound(f"No policy version {version}")
    read = PolicyRead.model_validate(row)
    # Written through the document models, so sections added since the version was stored
    # (the escalation ladder) show with the defaults the version is read with.
    document = policy_document(parse_policy(read.document, version=read.version))
    return read.model_copy(update={"document": document})


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
    version = await repository.append(
        session, policy_document(policy), note=note, created_by=actor_id
    )
    invalidate_cache(min_version=version)
    return await read_version(session, version)


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
        ladder=[
            LadderRungRead(stage=stage, level=rung.level.id, kind=rung.level.kind, at=rung.at)
            for stage, started, due in (
                (Stage.RESPOND, reported_at, respond),
                (Stage.RESOLVE, reported_at, resolve),
            )
            for rung in clocks.rungs(
                policy.escalation,
                started_at=started,
                due_at=due,
                urgent=data.urgent,
                severity=graded.severity,
            )
        ],
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


async def _policy_dep(session: SessionDep) -> Policy:
    return await current_policy(session)


PolicyDep = Annotated[Policy, Depends(_policy_dep)]
