"""The command line: `python -m app serve|worker|migrate|create-api-key|seed-demo`
(product.md s6)."""

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings
from app.core.db import make_engine, make_session_maker
from app.core.embedded import ServerLogFollower
from app.core.logging import announce, configure_logging
from app.core.metrics import MULTIPROC_ENV
from app.core.migrations import upgrade
from app.directory.schemas import ApiKeyCreate, UserCreate
from app.directory.service import any_user, create_api_key, create_user, department_by_code
from app.policy.service import ensure_default_policy
from app.rules.vocabulary import Role

log = structlog.get_logger("app.cli")


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


def _configure_logging() -> Settings:
    """Every line the command writes in the one format (LOG_FORMAT; issue 16 item 5)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _follow_postgres(settings: Settings) -> ServerLogFollower | None:
    """The embedded PostgreSQL's own lines as JSON records of ours (`source: "postgres"`)."""
    if settings.database_url:
        return None
    return ServerLogFollower(settings.app_data_dir).start()


def _metrics_folder(workers: int) -> Path | None:
    """Prometheus' multiprocess mode for several workers (app/core/metrics.py): the folder
    named by PROMETHEUS_MULTIPROC_DIR, or with `--workers` > 1 a new one (returned, to be
    removed at exit), emptied before any worker starts: files of an earlier run would be
    summed in. The workers inherit the variable."""
    given = os.environ.get(MULTIPROC_ENV)
    if not given and workers <= 1:
        return None
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="cle-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    return None if given else folder


def cmd_migrate(_args: argparse.Namespace) -> int:
    _configure_logging()
    url, _server = _database_url()
    upgrade(url)
    _run_in_session(url, ensure_default_policy)
    log.info("migrations_at_head")
    return 0


FIRST_KEY_FILE = "first-admin-key"


def _hand_over_first_key(token: str, data_dir: Path) -> None:
    """Issue 15 item 7: the first admin key goes to the person who started `serve`, never to
    a log stream. On a terminal it is printed once; where standard output is collected (a
    pipe, a container's log) it is written to `APP_DATA_DIR/first-admin-key` (mode 0600) and
    only that file's path is announced: read it, store the key, delete the file."""
    note = "First admin API key (shown once, store it now)"
    if sys.stdout.isatty():
        sys.stdout.write(f"{note}: {token}\n")
        sys.stdout.flush()
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FIRST_KEY_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    text = f"First admin API key written to {path} (read it, store it, delete the file)"
    announce("first_admin_key_written", text, path=str(path.resolve()))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    own_metrics_folder = _metrics_folder(args.workers)  # before any worker counts anything
    settings = _configure_logging()
    follower = _follow_postgres(settings)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; turn them into exceptions
    # so the `finally` below still stops the embedded PostgreSQL.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    server = None
    try:
        url, server = _database_url()
        upgrade(url)
        token = _run_in_session(url, _first_admin_token)
        if token:
            _hand_over_first_key(token, get_settings().app_data_dir)
        base = f"http://{args.host}:{args.port}"
        announce("serving", f"Serving on {base} (docs at /docs)", url=base, docs=base + "/docs")
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            # uvicorn's own lines go through our root handler (configure_logging) as JSON, at
            # the root's level (LOG_LEVEL).
            log_config=None,
            proxy_headers=True,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.cleanup()
        if follower is not None:
            follower.stop()  # after the cleanup: PostgreSQL's shutdown lines too
        if own_metrics_folder is not None:
            shutil.rmtree(own_metrics_folder, ignore_errors=True)
    return 0


def _exit_on_signal(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def cmd_worker(_args: argparse.Namespace) -> int:
    """The background jobs without the API (issue 12, item 1); SIGTERM stops it cleanly."""
    import uvloop

    from app.jobs import service_jobs
    from app.runner.process import run_worker

    settings = _configure_logging()
    follower = _follow_postgres(settings)
    url, server = _database_url()
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        upgrade(url)
        announce("worker_running", "Worker running (the background jobs; SIGTERM stops it)")
        # uvloop, as `serve` runs under: webhook delivery is event-loop bound (issue 13).
        uvloop.run(run_worker(get_settings(), service_jobs()))
    except KeyboardInterrupt:
        pass
    finally:
        # asyncio.run's loop put SIGTERM back to its default; keep it from cutting the cleanup.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None:
            server.cleanup()
        if follower is not None:
            follower.stop()
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
