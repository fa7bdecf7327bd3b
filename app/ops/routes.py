"""Operations: liveness and readiness (product.md section 4)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.core.db import SessionDep
from app.core.errors import ServiceUnavailable
from app.ops import repository

router = APIRouter(tags=["operations"])
RETRY_AFTER = {"Retry-After": str(ServiceUnavailable.retry_after)}


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
        current = await repository.schema_revision(session)
    except Exception:  # bounded by DB_CONNECT_TIMEOUT / DB_COMMAND_TIMEOUT (issue 10 item 3)
        return JSONResponse(
            {"status": "unavailable", "database": "unreachable"},
            status_code=503,
            headers=RETRY_AFTER,
        )
    if current != expected:
        return JSONResponse(
            {"status": "unavailable", "migrations": {"current": current, "head": expected}},
            status_code=503,
            headers=RETRY_AFTER,
        )
    return {"status": "ok", "migrations": {"current": current, "head": expected}}
