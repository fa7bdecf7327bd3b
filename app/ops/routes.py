"""Operations: liveness and readiness (product.md section 4)."""

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.core.db import SessionDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "Database unreachable or migrations not at head"}},
)
async def readyz(request: Request, session: SessionDep) -> Any:
    """The database answers and its schema is at the migrations' head revision."""
    expected: str | None = request.app.state.head_revision
    try:
        current = await session.scalar(sa.text("SELECT version_num FROM alembic_version"))
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if current != expected:
        return JSONResponse(
            {"status": "unavailable", "migrations": {"current": current, "head": expected}},
            status_code=503,
        )
    return {"status": "ok", "migrations": {"current": current, "head": expected}}
