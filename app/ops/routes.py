"""Operations: liveness, readiness and metrics (product.md section 4)."""

import hmac
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from app.core import metrics
from app.core.db import SessionDep
from app.core.errors import NotFound, ServiceUnavailable, Unauthorized
from app.core.query import ApiRouter
from app.ops import repository

router = ApiRouter(tags=["operations"])
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


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "Prometheus text format"},
        401: {"description": "METRICS_TOKEN is set and the request does not carry it"},
        404: {"description": "METRICS_ENABLED is false"},
    },
)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics: requests, database pools, runner jobs, webhook deliveries and
    escalation levels, summed over every worker. Open unless `METRICS_TOKEN` is set (then
    `Authorization: Bearer <METRICS_TOKEN>`)."""
    state = request.app.state
    if not state.metrics_enabled:
        raise NotFound("Metrics are turned off (METRICS_ENABLED=false)")
    token: str = state.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise Unauthorized("Send Authorization: Bearer <METRICS_TOKEN>")
    body = metrics.exposition(state.db)
    return Response(body, media_type=metrics.CONTENT_TYPE)
