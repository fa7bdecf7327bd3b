"""Contract fuzzing (issue 15, item 4): schemathesis over every operation of the served OpenAPI
document, against a real `python -m app serve` on a database of its own, once with an admin
key and once with a handler's key: every check, every phase (examples, coverage, fuzzing,
stateful, whose links schemathesis infers from the document), a fixed seed. Any failure of
any check fails the test, and the figures (operations, test cases, failures) are printed into
the CI log.

The fuzzer gets users and keys of its own, which `hooks.py` keeps it from deactivating,
re-roling or revoking, so that its stateful phase cannot blind the rest of the run; and a
database of its own, so that what it creates is not seen by the other tests.
`schemathesis.toml` holds the few operation-level exceptions, each with its reason; `hooks.py`
makes generated requests keep the rules the document can state only in words.

`CONTRACT_MAX_EXAMPLES` (default 12 per operation and phase: with the coverage phase's own
cases, about 5,300 test cases per role and 3 minutes for both roles on 2 busy cores) sets a
longer run locally."""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.e2e.processes import ROOT, Service, scratch_dir, service_env

HERE = Path(__file__).resolve().parent
SEED = 20261201
MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "12"))
# product.md section 6: the shipped departments, so that intake and routing can succeed.
DEPARTMENTS = ("CS", "IT", "OPS", "SALES", "LOG", "ADM", "SAF", "HR", "SUP")
# The two roles: an admin (every operation) and a handler of IT (a non-admin: 403 and 404
# where an admin gets through, the events IT leads).
ROLES = {"admin": None, "handler": "IT"}


def _in_thread(work: Callable[[], Any]) -> None:
    """Run `work` (which calls asyncio.run) off the test loop's thread."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # pragma: no cover - re-raised below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _admin_statement(url: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    _in_thread(lambda: asyncio.run(run()))


@dataclass(frozen=True)
class Caller:
    token: str
    user_id: str
    key_id: str


def _caller(base: str, admin_token: str, role: str, department: str | None) -> Caller:
    """A user of `role` with an API key, made through the API by the first admin."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    body: dict[str, Any] = {"name": f"contract {role}", "roles": [role]}
    if department:
        body["department"] = department
    user = httpx.post(base + "/v1/users", json=body, headers=headers, timeout=30)
    assert user.status_code == 201, user.text
    key = httpx.post(
        base + "/v1/api-keys",
        json={"name": f"contract {role}", "user_id": user.json()["id"]},
        headers=headers,
        timeout=30,
    )
    assert key.status_code == 201, key.text
    return Caller(key.json()["token"], user.json()["id"], key.json()["id"])


@pytest.fixture(scope="module")
def served(database_url: str) -> Iterator[tuple[Service, dict[str, Caller]]]:
    """The service (migrating its own, fresh database at start) and the fuzzer's callers.
    Failed authentication is not throttled (the run sends thousands of bad keys on purpose:
    `ignored_auth`), and webhook targets may be local (the run's machine has no DNS)."""
    name = f"cle_contract_{os.getpid()}"
    _admin_statement(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin_statement(database_url, f'CREATE DATABASE "{name}"')
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    env = service_env(
        DATABASE_URL=url,
        LOG_LEVEL="WARNING",
        AUTH_FAILURE_LIMIT="0",
        WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
    )
    try:
        with scratch_dir("cle-contract-") as folder:
            service = Service(env, folder / "service.log")
            try:
                service.wait_ready()
                assert service.token is not None
                headers = {"Authorization": f"Bearer {service.token}"}
                for code in DEPARTMENTS:
                    made = httpx.post(
                        service.base + "/v1/departments",
                        json={"code": code, "name": code},
                        headers=headers,
                        timeout=30,
                    )
                    assert made.status_code in (201, 409), made.text
                callers = {
                    role: _caller(service.base, service.token, role, department)
                    for role, department in ROLES.items()
                }
                yield service, callers
            finally:
                service.close()
    finally:
        _admin_statement(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _st_run(service: Service, caller: Caller, protected: str, report: Path) -> tuple[Any, float]:
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        service.base + "/openapi.json",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--header",
        f"Authorization: Bearer {caller.token}",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.contract.hooks",
        "CONTRACT_PROTECTED_IDS": protected,
        "CONTRACT_SELF_ID": caller.user_id,
        "PYTHONPATH": str(ROOT),
    }
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500, check=False
    )
    return done, time.monotonic() - started


def figures(report: dict[str, Any]) -> str:
    """One line of the run's figures, from schemathesis' JSON report."""
    operations, cases = report["operations"], report["test_cases"]
    failures = sum(failure["count"] for failure in report["failures"])
    phases = ", ".join(f"{name} {phase['status']}" for name, phase in report["phases"].items())
    return (
        f"operations {operations['tested']}/{operations['total']} tested; "
        f"test cases {cases['generated']} generated, {cases['with_failures']} with failures; "
        f"failures {failures}; errors {len(report['errors'])}; phases: {phases}"
    )


@pytest.mark.parametrize("role", list(ROLES))
def test_every_operation_keeps_the_contract(
    served: tuple[Service, dict[str, Caller]], role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Zero failures of every check over every operation, for this role (issue 15 item 4)."""
    service, callers = served
    protected = ",".join(v for c in callers.values() for v in (c.user_id, c.key_id))
    with scratch_dir("cle-contract-report-") as folder:
        report_path = folder / "report.json"
        done, seconds = _st_run(service, callers[role], protected, report_path)
        assert report_path.exists(), done.stdout[-5000:] + done.stderr[-5000:]
        report = json.loads(report_path.read_text())
    line = figures(report)
    with capsys.disabled():
        sys.stdout.write(f"\n== schemathesis, {role} key, seed {SEED}, {seconds:.0f} s: {line}\n")
        sys.stdout.flush()
    assert done.returncode == 0, done.stdout[-30000:] + done.stderr[-3000:]
    assert report["operations"]["tested"] == report["operations"]["total"], line
    assert not report["errors"], line
