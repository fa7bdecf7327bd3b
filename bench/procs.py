"""Processes the bench starts: own process group each, always stopped; CPU and RSS via psutil."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

_started: list[Started] = []


@dataclass
class Started:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None = None
    _log: object | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the whole process group, then SIGKILL to what is left."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        # stragglers of the group (workers whose parent died first)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        if self in _started:
            _started.remove(self)


def start(name: str, args: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> Started:
    log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
    popen = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    proc = Started(name, popen, log_path, log)
    _started.append(proc)
    return proc


def stop_all() -> None:
    for proc in list(reversed(_started)):
        proc.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: Started, timeout: float = 60.0) -> None:
    """Until `url` answers with any status below 500 (or the process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            tail = proc.log_path.read_text(errors="replace")[-3000:] if proc.log_path else ""
            raise RuntimeError(f"{proc.name} exited during start-up:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} did not answer {url} within {timeout}s")


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """user+system (+ reaped children) seconds of every process in the trees of `pids`."""
    out: dict[int, float] = {}
    for pid in pids:
        for proc in tree(pid):
            try:
                t = proc.cpu_times()
                out[proc.pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                continue
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two snapshots (processes born in between count from 0)."""
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def rss_report(pid: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for proc in tree(pid):
        try:
            mem = proc.memory_info()
            cmd = " ".join(proc.cmdline())
            rows.append(
                {
                    "pid": proc.pid,
                    "rss_mb": round(mem.rss / 2**20, 1),
                    "uss_mb": round(proc.memory_full_info().uss / 2**20, 1),
                    "role": (
                        "helper"
                        if "resource_tracker" in cmd
                        else "supervisor"
                        if proc.children()
                        else "worker"
                    ),
                    "cmd": cmd[:160],
                }
            )
        except psutil.NoSuchProcess:
            continue
    return rows
