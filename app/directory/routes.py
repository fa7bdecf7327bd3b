"""Directory endpoints: departments by code, users, API keys, `GET /v1/me`."""

import uuid
from typing import Annotated

from fastapi import Depends, Path, Query

from app.core.auth import CurrentPrincipal, current_principal, require_roles
from app.core.db import SessionDep
from app.core.idempotency import withhold_from_replay
from app.core.query import ApiRouter
from app.core.responses import Created
from app.core.schemas import DeptCode
from app.directory import schemas as api
from app.directory import service
from app.rules.vocabulary import Role

router = ApiRouter(prefix="/v1", tags=["directory"])
CodePath = Annotated[str, Path(max_length=16)]
# Who may call a route (checked before it runs; the routes do not need the caller itself).
CALLER = [Depends(current_principal)]
ADMIN = [Depends(require_roles(Role.ADMIN))]
READER = [
    Depends(
        require_roles(Role.ADMIN, Role.SUPERVISOR, Role.INTAKE_AGENT, Role.DEPT_HEAD, Role.HANDLER)
    )
]


@router.get("/me")
async def read_me(session: SessionDep, principal: CurrentPrincipal) -> api.Me:
    """The caller: the user (or service account) behind the API key or OIDC token."""
    return api.Me(user=await service.me(session, principal), api_key_id=principal.api_key_id)


@router.post("/departments", status_code=201, dependencies=ADMIN)
async def create_department(
    body: api.DepartmentCreate, session: SessionDep, created: Created
) -> api.DepartmentRead:
    """Create a department (admin)."""
    return created(await service.create_department(session, body), key="code")


@router.get("/departments", dependencies=CALLER)
async def list_departments(session: SessionDep) -> list[api.DepartmentRead]:
    """Every department, by code."""
    return await service.list_departments(session)


@router.get("/departments/{code}", dependencies=CALLER)
async def get_department(code: CodePath, session: SessionDep) -> api.DepartmentRead:
    """One department by its code."""
    return api.DepartmentRead.model_validate(await service.department_by_code(session, code))


@router.patch("/departments/{code}", dependencies=ADMIN)
async def update_department(
    code: CodePath, body: api.DepartmentUpdate, session: SessionDep
) -> api.DepartmentRead:
    """Rename a department, set its head or deactivate it (admin)."""
    return await service.update_department(session, code, body)


@router.post("/users", status_code=201, dependencies=ADMIN)
async def create_user(body: api.UserCreate, session: SessionDep, created: Created) -> api.UserRead:
    """Create a user with roles and a department (admin)."""
    return created(await service.create_user(session, body))


@router.get("/users", dependencies=READER)
async def list_users(
    session: SessionDep, department: Annotated[DeptCode | None, Query()] = None
) -> list[api.UserRead]:
    """Users, optionally of one department (staff roles; not reporters or integrations)."""
    return await service.list_users(session, department)


@router.get("/users/{user_id}", dependencies=READER)
async def get_user(user_id: uuid.UUID, session: SessionDep) -> api.UserRead:
    """One user."""
    return await service.get_user(session, user_id)


@router.patch(
    "/users/{user_id}",
    dependencies=ADMIN,
    responses={409: {"description": "The email is taken, or this is the last active admin"}},
)
async def update_user(
    user_id: uuid.UUID, body: api.UserUpdate, session: SessionDep
) -> api.UserRead:
    """Change a user's name, email, department, roles or active flag (admin)."""
    return await service.update_user(session, user_id, body)


@router.post("/api-keys", status_code=201, dependencies=[Depends(withhold_from_replay), *ADMIN])
async def create_api_key(body: api.ApiKeyCreate, session: SessionDep) -> api.ApiKeyCreated:
    """Issue an API key for a user (admin); the token is shown once, in this response only."""
    return await service.create_api_key(session, body)


@router.get("/api-keys", dependencies=ADMIN)
async def list_api_keys(
    session: SessionDep, user_id: Annotated[uuid.UUID | None, Query()] = None
) -> list[api.ApiKeyRead]:
    """API keys (never their tokens), optionally of one user (admin)."""
    return list(await service.list_api_keys(session, user_id))


@router.delete(
    "/api-keys/{key_id}",
    dependencies=ADMIN,
    responses={409: {"description": "The last active admin's last key (`last-admin`)"}},
)
async def revoke_api_key(key_id: uuid.UUID, session: SessionDep) -> api.ApiKeyRead:
    """Revoke an API key (admin); it stops working at once."""
    return await service.revoke_api_key(session, key_id)
