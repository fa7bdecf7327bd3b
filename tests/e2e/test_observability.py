"""Issue 16 item 5 on a real `python -m app serve --workers 2` with its embedded PostgreSQL:

* every line the service writes, on stdout and stderr, is one JSON object: uvicorn's own lines,
  the migrations', the embedded PostgreSQL's (`source: "postgres"`) and ours;
* no API key, no reporter e-mail or phone number in them (the first admin key once, in its
  `first_admin_key` record on stdout, as product.md section 5 asks); access lines name the
  caller by user id;
* /metrics, answered by either worker, sums the counts of both (prometheus multiprocess mode).
"""

import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import intake_body
from tests.e2e.processes import Service, scratch_dir, service_env, stdout_record

BATCH = 40


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cle_http_requests_total" and sample.labels["route"] == "/healthz":
                return sample.value
    return 0.0


def _per_worker_healthz(folder: Path) -> list[float]:
    """Each worker's own count of /healthz requests, read from its file."""
    counts = []
    for path in sorted(folder.glob("counter_*.db")):
        merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        counts.append(
            sum(
                s.value
                for metric in merged
                for s in metric.samples
                if s.name == "cle_http_requests_total" and s.labels.get("route") == "/healthz"
            )
        )
    return counts


def _healthz_burst(base: str) -> None:
    """BATCH requests from 8 threads, each on new connections, so both workers take some."""

    def send(count: int) -> None:
        for _ in range(count):
            assert httpx.get(base + "/healthz", timeout=10).status_code == 200

    threads = [threading.Thread(target=send, args=(BATCH // 8,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def _traffic(base: str, token: str, email: str, phone: str) -> tuple[str, str]:
    """Requests carrying a key and a reporter's contact data; (caller's user id, bad key)."""
    headers = {"Authorization": f"Bearer {token}"}
    me = httpx.get(base + "/v1/me", headers=headers, timeout=10)
    assert me.status_code == 200
    body = intake_body(reporter={"name": "Li Lei", "email": email, "phone": phone})
    made = httpx.post(
        base + "/v1/events", json=body, headers={**headers, "Idempotency-Key": "k1"}, timeout=10
    )
    assert made.status_code == 201, made.text
    event_id = made.json()["id"]
    assert httpx.get(f"{base}/v1/events/{event_id}", headers=headers, timeout=10).is_success
    listed = httpx.get(base + "/v1/events", params={"q": email}, headers=headers, timeout=10)
    assert listed.status_code == 200
    bad = "cle_" + uuid.uuid4().hex * 2
    refused = httpx.get(base + "/v1/me", headers={"Authorization": f"Bearer {bad}"}, timeout=10)
    assert refused.status_code == 401
    return str(me.json()["user"]["id"]), bad


def _records(text: str, stream: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        try:
            records.append(stdout_record(line))
        except ValueError as exc:
            raise AssertionError(f"not JSON on {stream}: {line!r}") from exc
    return records


def test_two_workers_write_one_json_log_and_metrics_count_both() -> None:
    with scratch_dir("cle-observability-") as folder:
        metrics_dir = folder / "metrics"
        metrics_dir.mkdir()
        (metrics_dir / "counter_1.db").write_bytes(b"stale")  # emptied at start
        env = service_env(
            APP_DATA_DIR=str(folder / "data"), PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
        )
        service = Service(env, folder / "stderr.log", "--workers", "2")
        try:
            service.wait_ready()
            token = service.token
            assert token is not None
            email = f"li.lei.{uuid.uuid4().hex[:8]}@example.com"
            phone = f"+86 139 {uuid.uuid4().int % 10**8:08d}"
            user_id, bad_key = _traffic(service.base, token, email, phone)
            assert not (metrics_dir / "counter_1.db").exists()

            sent = 0
            for _ in range(5):  # until both workers have answered some (bounded)
                _healthz_burst(service.base)
                sent += BATCH
                if sum(1 for count in _per_worker_healthz(metrics_dir) if count) >= 2:
                    break
            per_worker = _per_worker_healthz(metrics_dir)
            scraped = httpx.get(service.base + "/metrics", timeout=10)
            assert scraped.status_code == 200
            assert sum(1 for count in per_worker if count) >= 2, per_worker
            assert _healthz_count(scraped.text) == sent == sum(per_worker)
            assert service.terminate() == 0
            assert service.process.stdout is not None
            stdout = "\n".join(service.lines) + "\n" + service.process.stdout.read()
        finally:
            service.close()
        stderr = service.log_path.read_text()

    out, err = _records(stdout, "stdout"), _records(stderr, "stderr")
    assert [r["event"] for r in out] == ["first_admin_key_written", "serving"]
    everything = stdout + stderr
    assert token not in everything  # in its file only (issue 15 item 7)
    for secret in (bad_key, email, phone, email.split("@")[0]):
        assert secret not in everything
    loggers = {r.get("logger") for r in err}
    assert {"uvicorn.error", "alembic.runtime.migration"} <= loggers
    started = [r for r in err if str(r["event"]).startswith("Started server process")]
    assert len(started) == 2
    postgres = [r["event"] for r in err if r.get("source") == "postgres"]
    assert "database system is ready to accept connections" in postgres
    assert "database system is shut down" in postgres
    access = [r for r in err if r["event"] == "request"]
    mine = [r for r in access if r["path"].startswith("/v1/")]
    assert {(r["method"], r["path"], r["status"]) for r in mine} >= {
        ("GET", "/v1/me", 200),
        ("POST", "/v1/events", 201),
        ("GET", "/v1/events/{event_id}", 200),
        ("GET", "/v1/events", 200),
        ("GET", "/v1/me", 401),
    }
    for record in mine:
        assert record["user_id"] == (None if record["status"] == 401 else user_id)
        assert record["request_id"]
        assert isinstance(record["duration_ms"], float | int)
