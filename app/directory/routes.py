"""Directory endpoints: departments by code, users, API keys, `GET /v1/me`."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.core.auth import AdminPrincipal, CurrentPrincipal, Principal, require_roles
from app.core.db import SessionDep
from app.core.idempotency import withhold_from_replay
from app.core.schemas import DeptCode
from app.directory import service
from app.directory.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    DepartmentCreate,
    DepartmentRead,
    DepartmentUpdate,
    Me,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.rules.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["directory"])
CodePath = Annotated[str, Path(max_length=16)]
DirectoryReader = Annotated[
    Principal,
    Depends(
        require_roles(Role.ADMIN, Role.SUPERVISOR, Role.INTAKE_AGENT, Role.DEPT_HEAD, Role.HANDLER)
    ),
]


@router.get("/me")
async def read_me(session: SessionDep, principal: CurrentPrincipal) -> Me:
    """The caller: the user (or service account) behind the API key."""
    return Me(user=await service.me(session, principal), api_key_id=principal.api_key_id)


@router.post("/departments", status_code=201)
async def create_department(
    body: DepartmentCreate, session: SessionDep, _admin: AdminPrincipal, response: Response
) -> DepartmentRead:
    """Create a department (admin)."""
    department = await service.create_department(session, body)
    response.headers["Location"] = f"/v1/departments/{department.code}"
    return department


@router.get("/departments")
async def list_departments(session: SessionDep, _p: CurrentPrincipal) -> list[DepartmentRead]:
    """Every department, by code."""
    return await service.list_departments(session)


@router.get("/departments/{code}")
async def get_department(
    code: CodePath, session: SessionDep, _p: CurrentPrincipal
) -> DepartmentRead:
    """One department by its code."""
    return DepartmentRead.model_validate(await service.department_by_code(session, code))


@router.patch("/departments/{code}")
async def update_department(
    code: CodePath, body: DepartmentUpdate, session: SessionDep, _admin: AdminPrincipal
) -> DepartmentRead:
    """Rename a department, set its head or deactivate it (admin)."""
    return await service.update_department(session, code, body)


@router.post("/users", status_code=201)
async def create_user(
    body: UserCreate, session: SessionDep, _admin: AdminPrincipal, response: Response
) -> UserRead:
    """Create a user with roles and a department (admin)."""
    user = await service.create_user(session, body)
    response.headers["Location"] = f"/v1/users/{user.id}"
    return user


@router.get("/users")
async def list_users(
    session: SessionDep, _p: DirectoryReader, department: Annotated[DeptCode | None, Query()] = None
) -> list[UserRead]:
    """Users, optionally of one department (staff roles; not reporters or integrations)."""
    return await service.list_users(session, department)


@router.get("/users/{user_id}")
async def get_user(user_id: uuid.UUID, session: SessionDep, _p: DirectoryReader) -> UserRead:
    """One user."""
    return await service.get_user(session, user_id)


@router.patch("/users/{user_id}")
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, session: SessionDep, _admin: AdminPrincipal
) -> UserRead:
    """Change a user's name, email, department, roles or active flag (admin)."""
    return await service.update_user(session, user_id, body)


@router.post("/api-keys", status_code=201, dependencies=[Depends(withhold_from_replay)])
async def create_api_key(
    body: ApiKeyCreate, session: SessionDep, _admin: AdminPrincipal
) -> ApiKeyCreated:
    """Issue an API key for a user (admin); the token is shown once, in this response only."""
    return await service.create_api_key(session, body)


@router.get("/api-keys")
async def list_api_keys(
    session: SessionDep,
    _admin: AdminPrincipal,
    user_id: Annotated[uuid.UUID | None, Query()] = None,
) -> list[ApiKeyRead]:
    """API keys (never their tokens), optionally of one user (admin)."""
    return list(await service.list_api_keys(session, user_id))


@router.delete("/api-keys/{key_id}")
async def revoke_api_key(
    key_id: uuid.UUID, session: SessionDep, _admin: AdminPrincipal
) -> ApiKeyRead:
    """Revoke an API key (admin); it stops working at once."""
    return await service.revoke_api_key(session, key_id)
