"""The active loop end to end (issue 12; R1.1, R1.3.1, R3.3.2): a real `python -m app serve`
with its runner and a policy of very short deadlines. An assigned event breaches its resolve
deadline by itself; the breach and the escalation appear on its timeline, and the lead
department's head finds it in `GET /v1/me/queue` as an escalation.

Only 127.0.0.1; bounded in time; every process it starts is stopped, also on failure."""

import copy
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from app.policy.document import DEFAULT_POLICY_DOCUMENT
from tests.e2e.processes import Service, scratch_dir, service_env, stop_postgres_in

# Hours: 0.002 h is 7.2 s to resolve; escalations 0.001 h (3.6 s) after the breach.
SHORT = 0.002


def _short_policy() -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(dict(DEFAULT_POLICY_DOCUMENT))
    deadlines = document["deadlines"]
    deadlines["resolve_hours"] = {"major": SHORT, "important": SHORT, "general": SHORT}
    for step in document["escalation"]["escalations"]:
        step["after_breach_hours"] = SHORT / 2
    return document


def _person(client: httpx.Client, role: str, department: str) -> dict[str, str]:
    user = client.post(
        "/v1/users",
        json={
            "name": f"{role} {department}",
            "email": f"{uuid.uuid4().hex[:10]}@example.com",
            "department": department,
            "roles": [role],
        },
    )
    assert user.status_code == 201, user.text
    key = client.post("/v1/api-keys", json={"name": role, "user_id": user.json()["id"]})
    assert key.status_code == 201, key.text
    return {"id": user.json()["id"], "Authorization": f"Bearer {key.json()['token']}"}


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_event_breaches_and_escalates_by_itself_on_a_real_server() -> None:
    with scratch_dir("cle-clocks-") as folder:
        env = service_env(APP_DATA_DIR=str(folder), RUNNER_POLL_SECONDS="0.5")
        service = Service(env, folder / "service.log")
        try:
            service.wait_ready()
            admin = {"Authorization": f"Bearer {service.token}"}
            with httpx.Client(base_url=service.base, headers=admin, timeout=10) as client:
                for code in ("CS", "IT", "OPS", "ADM", "SAF", "HR"):
                    made = client.post("/v1/departments", json={"code": code, "name": code})
                    assert made.status_code == 201, made.text
                put = client.put("/v1/policy", json={"document": _short_policy(), "note": "e2e"})
                assert put.status_code == 200, put.text
                desk = _person(client, "intake_agent", "CS")
                head = _person(client, "dept_head", "IT")
                handler = _person(client, "handler", "IT")

                def call(who: dict[str, str], method: str, path: str, **kw: Any) -> Any:
                    auth = {"Authorization": who["Authorization"]}
                    response = client.request(method, path, headers=auth, **kw)
                    assert response.status_code < 300, response.text
                    return response.json()

                event = call(
                    desk,
                    "POST",
                    "/v1/events",
                    json={
                        "title": "Order system down for one warehouse",
                        "description": "Pickers cannot confirm orders since 09:00.",
                        "channel": "hotline",
                        "reporter": {"name": "Li Wei", "phone": "+86 10 1234 5678"},
                    },
                )
                path = f"/v1/events/{event['id']}"
                call(
                    desk,
                    "POST",
                    path + "/classification",
                    json={"category": "business_issue", "subcategory": "system_failure"},
                )
                assigned = call(
                    desk, "POST", path + "/assignment", json={"assignee_id": handler["id"]}
                )
                assert assigned["sla"]["stage"] == "resolve"
                assert assigned["sla"]["breached"] is False

                def timeline_actions() -> list[str]:
                    return [e["action"] for e in call(desk, "GET", path + "/timeline")["items"]]

                _until(
                    lambda: "escalated" in timeline_actions(), 60, "the breach and an escalation"
                )
                actions = timeline_actions()
                fired = [a for a in actions if a in ("sla_warning", "sla_breached", "escalated")]
                assert fired[:3] == ["sla_warning", "sla_warning", "sla_breached"], actions
                assert fired.count("sla_breached") == 1

                queue = call(head, "GET", "/v1/me/queue")["items"]
                escalations = [i for i in queue if i["waiting_for"] == "escalation"]
                assert [i["event_id"] for i in escalations] == [event["id"]]
                assert escalations[0]["breached"] is True

                sla = call(desk, "GET", path + "/sla")["cycles"]
                assert [(c["stage"], c["cycle"]) for c in sla] == [("respond", 1), ("resolve", 1)]
                assert sla[0]["met"] is True
                resolve = sla[1]
                assert resolve["finished_at"] is None
                assert resolve["breached"] is True
                levels = [level["level"] for level in resolve["levels_fired"]]
                assert levels[:4] == ["warn_50", "warn_80", "breach", "escalate_intake"]
                breach = resolve["levels_fired"][2]
                assert breach["notify"] == [
                    {"user_ids": [head["id"]], "roles": ["dept_head"], "department": "IT"}
                ]
            assert service.terminate() == 0
        finally:
            service.close()
            stop_postgres_in(folder / "pg")
