"""create_app(): lifespan, middleware, error handlers, routers."""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware.cors import CORSMiddleware

from app.console import routes as console
from app.core import metrics
from app.core.abuse import auth_failure_guard
from app.core.config import Settings, get_settings
from app.core.cors import cors_options
from app.core.db import Database, make_engine, make_pool, make_session_maker
from app.core.docs import install_docs
from app.core.errors import install_error_handlers
from app.core.gc_tuning import tuned_gc
from app.core.logging import RequestLogMiddleware, configure_logging
from app.core.migrations import head_revision
from app.core.oidc import OidcVerifier
from app.core.openapi import install_openapi
from app.core.outage import OutageMiddleware
from app.core.security_headers import SecurityHeaders
from app.core.transaction import TransactionMiddleware
from app.directory.repository import PRINCIPAL_STORE
from app.directory.routes import router as directory_router
from app.events.routes import assessment, closing, feedback, handling, intake, review
from app.events.routes.read import queue_router
from app.events.routes.read import router as read_router
from app.jobs import service_jobs
from app.kpis.routes import router as kpis_router
from app.ops.routes import router as ops_router
from app.policy.routes import router as policy_router
from app.policy.service import ensure_default_policy
from app.reporting.routes import router as reporting_router
from app.runner.process import running
from app.supervision.routes import rectifications, spot_checks
from app.webhooks.routes import router as webhooks_router

DESCRIPTION = """
Closed-loop event management: every business problem, customer complaint, internal
coordination matter and emergency is taken in, graded, routed, handled to a plan, fed back,
reviewed, improved on and closed only when the loop is really closed.

* Authentication: `Authorization: Bearer <API key>`.
* Errors: RFC 9457 `application/problem+json` with a stable `type`.
* `Idempotency-Key` on every POST: a replay returns the first (successful) response with
  `Idempotent-Replayed: true`; the same key with another body is 422; a replay while the
  first is still running is 409. Keys expire after 24 hours. Error responses are not stored.
* Lists use keyset pagination (`limit`, `cursor`; `next_cursor` and a `Link` header).
* Events carry `version` and an `ETag`; `If-Match` makes a change conditional (412 when stale).
"""


def _lifespan(
    settings: Settings, engine: AsyncEngine | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start: the database (unless a test gave one), the default policy, the runner and the
    pool gauges; stop: all of it, in reverse."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = pool = None
        if app.state.db is None:
            if settings.database_url is None:
                raise RuntimeError("DATABASE_URL is not set (use `python -m app serve`)")
            own_engine = engine or make_engine(
                settings.database_url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
                command_timeout=settings.db_command_timeout,
            )
            pool = await make_pool(settings.database_url, size=settings.db_pool_size)
            app.state.db = Database(make_session_maker(own_engine), pool)
        database: Database = app.state.db
        try:
            async with database.session_maker() as session, session.begin():
                await ensure_default_policy(session)
            async with (
                running(database.session_maker, settings, service_jobs()) as runner,
                metrics.sampling(database),  # the pool gauges with several workers
            ):
                app.state.runner = runner
                with tuned_gc(settings.gc_gen0_threshold):
                    yield
        finally:
            if pool is not None:
                await pool.close()
            if own_engine is not None:
                await own_engine.dispose()

    return lifespan


def _install_middleware(app: FastAPI, settings: Settings, oidc: OidcVerifier | None) -> None:
    """The layers around every request, innermost first: the transaction (auth, body, the
    Idempotency-Key), the outage answer, CORS when configured, the access log."""
    app.add_middleware(
        TransactionMiddleware,
        database=lambda: app.state.db,
        principals=PRINCIPAL_STORE,
        max_body_bytes=settings.max_body_bytes,
        self_idempotent=intake.SELF_IDEMPOTENT,
        login_free=feedback.LOGIN_FREE,
        oidc=oidc,
    )
    app.add_middleware(OutageMiddleware)  # outside the transaction, inside the access log
    cors = cors_options(settings)  # issue 16 item 2: only when CORS_ALLOW_ORIGINS is set
    if cors is not None:
        app.add_middleware(CORSMiddleware, **cors)
    app.add_middleware(
        RequestLogMiddleware,  # also the security headers and the 429 of `abuse` (issue 15)
        guard=auth_failure_guard(settings.auth_failure_limit, settings.auth_failure_window_seconds),
        security_headers=SecurityHeaders(
            {**install_docs(app), **console.security_headers(settings)}
        ),
    )


def create_app(settings: Settings | None = None, *, engine: AsyncEngine | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)

    app = FastAPI(
        title="Closed-loop event management",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=_lifespan(settings, engine),
        # FastAPI's built-in OpenTelemetry probes the global providers on every request; this
        # service exports no traces, so the probe is switched off (bench/README.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Issue 15 item 2: /docs and /redoc are served offline by `install_docs` below.
        docs_url=None,
        redoc_url=None,
    )
    app.state.db = None
    app.state.public_base_url = settings.public_base_url  # links handed out (survey links)
    # Who may read GET /metrics (issue 16 item 5, app/ops/routes.py).
    app.state.metrics_enabled, app.state.metrics_token = (
        settings.metrics_enabled,
        settings.metrics_token,
    )
    # Core looks callers up through the directory's repository (see `auth.PrincipalStore`).
    app.state.principals = PRINCIPAL_STORE
    # People's OIDC bearer tokens beside API keys (issue 16 item 1); None: not configured.
    app.state.oidc = oidc = OidcVerifier.from_settings(settings)
    app.state.head_revision = head_revision()
    install_error_handlers(app)
    # Issue 15: the document says what each operation really answers (app/core/openapi.py);
    # everything under /v1 takes a bearer token but the login-free survey links.
    install_openapi(
        app,
        public=lambda path: not path.startswith("/v1/") or path.startswith(feedback.LOGIN_FREE),
        oidc_issuer=settings.oidc_issuer,
    )
    # The hot routes first: routes are matched in order, one by one.
    routers = (
        intake.router,
        read_router,
        ops_router,
        directory_router,
        policy_router,
        assessment.router,
        handling.router,
        feedback.router,
        feedback.surveys,
        review.router,
        closing.router,
        kpis_router,
        reporting_router,
        queue_router,
        webhooks_router,
        spot_checks,
        rectifications,
    )
    for router in routers:
        app.include_router(router)
    # After the API's routes: the docs pages it adds are matched after them.
    _install_middleware(app, settings, oidc)
    # Issue 16 item 6: the reference console, plain files on the public API (app/console).
    console.install(app, settings)
    return app
