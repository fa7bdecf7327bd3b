"""The command line: `python -m app serve|worker|migrate|create-api-key|seed-demo`
(product.md s6)."""

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import get_settings
from app.core.db import make_engine, make_session_maker
from app.core.migrations import upgrade
from app.directory.schemas import ApiKeyCreate, UserCreate
from app.directory.service import any_user, create_api_key, create_user, department_by_code
from app.policy.service import ensure_default_policy
from app.rules.vocabulary import Role


def _database_url() -> tuple[str, Any]:
    """DATABASE_URL, or an embedded PostgreSQL in APP_DATA_DIR (started or reused)."""
    settings = get_settings()
    if settings.database_url:
        return settings.database_url, None
    from app.core.embedded import start_embedded

    server, url = start_embedded(settings.app_data_dir)
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    return url, server


def _run_in_session(url: str, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    async def runner() -> Any:
        engine = make_engine(url, pool_size=2, max_overflow=0)
        try:
            async with make_session_maker(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(runner())


async def _first_admin_token(session: AsyncSession) -> str | None:
    """On an empty directory, create the first admin and return its token (shown once)."""
    if await any_user(session):
        return None
    admin = await create_user(
        session, UserCreate(name="First admin", roles=[Role.ADMIN]), service_account=True
    )
    key = await create_api_key(session, ApiKeyCreate(name="first admin key", user_id=admin.id))
    return key.token


def cmd_migrate(_args: argparse.Namespace) -> int:
    url, _server = _database_url()
    upgrade(url)
    _run_in_session(url, ensure_default_policy)
    print("migrations at head", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    url, server = _database_url()
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; turn them into exceptions
    # so the `finally` below still stops the embedded PostgreSQL.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        upgrade(url)
        token = _run_in_session(url, _first_admin_token)
        if token:
            print(f"First admin API key (shown once, store it now): {token}", flush=True)
        print(f"Serving on http://{args.host}:{args.port} (docs at /docs)", flush=True)
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            proxy_headers=True,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.cleanup()
    return 0


def _exit_on_signal(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def cmd_worker(_args: argparse.Namespace) -> int:
    """The background jobs without the API (issue 12, item 1); SIGTERM stops it cleanly."""
    import uvloop

    from app.jobs import service_jobs
    from app.runner.process import run_worker

    url, server = _database_url()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        upgrade(url)
        print("Worker running (the background jobs; SIGTERM stops it)", flush=True)
        # uvloop, as `serve` runs under: webhook delivery is event-loop bound (issue 13).
        uvloop.run(run_worker(get_settings(), service_jobs()))
    except KeyboardInterrupt:
        pass
    finally:
        # asyncio.run's loop put SIGTERM back to its default; keep it from cutting the cleanup.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None:
            server.cleanup()
    return 0


def cmd_create_api_key(args: argparse.Namespace) -> int:
    url, _server = _database_url()
    upgrade(url)

    async def work(session: AsyncSession) -> str:
        if args.department:
            await department_by_code(session, args.department)
        user = await create_user(
            session,
            UserCreate(name=args.name, department=args.department, roles=[Role(args.role)]),
            service_account=True,
        )
        key = await create_api_key(session, ApiKeyCreate(name=args.name, user_id=user.id))
        return key.token

    print(_run_in_session(url, work))
    return 0


def cmd_seed_demo(_args: argparse.Namespace) -> int:
    from app.demo import seed

    url, _server = _database_url()
    upgrade(url)
    for line in _run_in_session(url, seed):
        print(line)
    return 0


def openapi_document() -> str:
    """The OpenAPI document as committed in openapi/openapi.json (stable key order)."""
    import json

    from app.main import create_app

    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


def cmd_openapi(args: argparse.Namespace) -> int:
    document = openapi_document()
    if args.output == "-":
        sys.stdout.write(document)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(document)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    worker = commands.add_parser("worker", help="migrate, then run the background jobs only")
    worker.set_defaults(func=cmd_worker)
    key = commands.add_parser("create-api-key", help="create a service account and print its token")
    key.add_argument("--name", required=True)
    key.add_argument("--role", required=True, choices=[r.value for r in Role])
    key.add_argument("--department")
    key.set_defaults(func=cmd_create_api_key)
    commands.add_parser(
        "seed-demo", help="load demo departments, users, keys and events"
    ).set_defaults(func=cmd_seed_demo)
    spec = commands.add_parser("openapi", help="write the OpenAPI document")
    spec.add_argument("--output", default="openapi/openapi.json", help="a path, or - for stdout")
    spec.set_defaults(func=cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result
