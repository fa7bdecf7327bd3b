"""Policy endpoints: read, replace (new version), versions, evaluate (product.md section 3)."""

from typing import Annotated

from fastapi import Path

from app.core.auth import AdminPrincipal, CurrentPrincipal
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.query import ApiRouter
from app.policy import service
from app.policy.schemas import EvaluateRequest, EvaluateResult, PolicyRead, PolicyUpdate
from app.policy.service import PolicyDep

router = ApiRouter(prefix="/v1/policy", tags=["policy"])


@router.get("")
async def get_policy(session: SessionDep, _p: CurrentPrincipal) -> PolicyRead:
    """The policy document in force, with its version."""
    return await service.read_version(session)


@router.put("")
async def put_policy(body: PolicyUpdate, session: SessionDep, admin: AdminPrincipal) -> PolicyRead:
    """Replace the policy (admin): validated, stored as a new version; history never changes."""
    return await service.put_policy(session, body.document, note=body.note, actor_id=admin.user_id)


@router.get("/versions/{version}")
async def get_policy_version(
    version: Annotated[int, Path(ge=1, le=2_000_000_000)], session: SessionDep, _p: CurrentPrincipal
) -> PolicyRead:
    """One stored policy version, as it was."""
    return await service.read_version(session, version)


@router.post("/evaluate")
async def evaluate(
    body: EvaluateRequest, session: SessionDep, policy: PolicyDep, _p: CurrentPrincipal
) -> EvaluateResult:
    """Grade, route and compute deadlines for a hypothetical event without saving anything."""
    await service.check_involved(session, body.involved_departments)
    return service.evaluate(policy, body, now=utcnow())
