"""Directory request and response shapes (product.md section 7)."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import MISSING, Field

from app.core.schemas import DeptCode, EmailAddress, RequestModel, ResponseModel, ShortText
from app.rules.vocabulary import Role

Roles = Annotated[list[Role], Field(min_length=1, max_length=7)]
OidcSubject = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="The `sub` claim of the person's OIDC tokens (how a token finds its user)",
    ),
]


class DepartmentCreate(RequestModel):
    code: DeptCode
    name: ShortText
    kind: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    head_id: uuid.UUID | None = None


class DepartmentUpdate(RequestModel):
    """Only the fields sent change; `kind` and `head_id` may be null (cleared), `name` and
    `active` may be left out but not null."""

    # Issue 10 item 12: null is accepted exactly where the schema says a field is nullable.
    name: ShortText | MISSING = MISSING
    kind: Annotated[str, Field(min_length=1, max_length=50)] | None = None
    head_id: uuid.UUID | None = None
    active: bool | MISSING = MISSING


class DepartmentRead(ResponseModel):
    id: uuid.UUID
    code: str
    name: str
    kind: str | None
    head_id: uuid.UUID | None
    active: bool


class UserCreate(RequestModel):
    name: ShortText
    email: EmailAddress | None = None
    department: DeptCode | None = None
    roles: Roles
    oidc_subject: OidcSubject | None = None


class UserUpdate(RequestModel):
    """Only the fields sent change; `email` and `department` may be null (cleared), `name`,
    `roles` and `active` may be left out but not null."""

    name: ShortText | MISSING = MISSING
    email: EmailAddress | None = None
    department: DeptCode | None = None
    roles: Roles | MISSING = MISSING
    active: bool | MISSING = MISSING
    oidc_subject: OidcSubject | None = None


class UserRead(ResponseModel):
    id: uuid.UUID
    name: str
    email: str | None
    department: str | None
    roles: list[Role]
    service_account: bool
    active: bool
    oidc_subject: str | None = None


class ApiKeyCreate(RequestModel):
    name: ShortText
    user_id: uuid.UUID


class ApiKeyRead(ResponseModel):
    id: uuid.UUID
    name: str
    user_id: uuid.UUID
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    token: str = Field(description="The bearer token. Shown only in this response; store it now.")


class Me(ResponseModel):
    user: UserRead
    api_key_id: uuid.UUID | None = Field(
        description="The API key the request came with; null when signed in with an OIDC token"
    )
