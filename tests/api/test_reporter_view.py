"""The reporter view of an event (issue 10, item 7; app/rules/views.py; R3.4.1, R6.1, R6.2;
product.md section 1).

Whoever sees an event only because they reported it (a reporter, an integration, staff of a
department that is not involved) sees their report, where it stands, its public due dates, the
feedback given to them and their satisfaction: never the plan steps, drop notes, grading,
routing, the assignee, internal notes, the feedback to the intake desk or the improvement
actions. The same rule holds for get, list, timeline, notes, checklist and actions.
"""

from typing import Any

import httpx
from fastapi import FastAPI

from app.rules.views import REPORTER_CHECKLIST_CODES, REPORTER_EVENT_FIELDS
from app.rules.vocabulary import Role, Status
from tests.api import flow
from tests.api.flow import BUSINESS_ISSUE, JSON, Cast, Scenario, call, url
from tests.conftest import Actor, MakeActor, intake_body

STEP_TITLE = "Ask the bank about account 4711"
DROP_NOTE = "Dropped: the supplier contract is under legal review"
INTERNAL_NOTE = "Internal: the release manager skipped the checklist"
FOR_REPORTER = "We called you and explained the replacement invoices"
TO_DESK = "Root cause: config drift on the billing host"
TO_REPORTER = "Your invoices were replaced with correctly numbered ones"
PUBLIC_HEALTH = Scenario(  # led by HR in the default policy (product.md section 3)
    category="emergency",
    subcategory="public_health",
    lead="HR",
    severity="important",
    impact={"safety": "minor"},
    urgent=True,
)
SECRETS = (STEP_TITLE, DROP_NOTE, INTERNAL_NOTE, TO_DESK)
STAFF_ONLY_FIELDS = (
    "steps",
    "plan_discussed_with",
    "resolution",
    "severity",
    "impact",
    "grading",
    "lead_department",
    "cooperating_departments",
    "routing",
    "assignee_id",
    "review_by",
    "cancel_reason",
)


async def _handled_event(client: httpx.AsyncClient, cast: Cast, reporter: Actor) -> str:
    """An event of `reporter` taken to feedback_given with every kind of internal record: a
    plan with a done and a dropped step, an internal note, a note for the reporter, feedback
    to the desk and to the reporter, an improvement action and a satisfaction score."""
    event_id: str = (await flow.intake(client, reporter, BUSINESS_ISSUE))["id"]
    await flow.classify(client, cast.desk, event_id, BUSINESS_ISSUE)
    await flow.assign(client, cast.desk, event_id, assignee=cast.handler)
    plan = flow.plan_body(cast.handler, cast.handler)
    plan["steps"][0]["title"] = STEP_TITLE
    event = await call(client, "PUT", url(event_id, "/plan"), cast.handler, json=plan)
    first, second = (s["id"] for s in event["steps"])
    await call(
        client,
        "PATCH",
        url(event_id, f"/steps/{first}"),
        cast.handler,
        json={"status": "dropped", "note": DROP_NOTE},
    )
    await call(
        client, "PATCH", url(event_id, f"/steps/{second}"), cast.handler, json={"status": "done"}
    )
    for body, visibility in ((INTERNAL_NOTE, "internal"), (FOR_REPORTER, "reporter")):
        note = {"kind": "customer_contact", "body": body, "visibility": visibility}
        await call(client, "POST", url(event_id, "/notes"), cast.desk, json=note, expect=201)
    await flow.resolve(client, cast.handler, event_id)
    to_desk = {**flow.feedback_body("intake"), "result": TO_DESK}
    fb = await call(
        client, "POST", url(event_id, "/feedback"), cast.handler, json=to_desk, expect=201
    )
    await flow.decide(client, cast.desk, event_id, fb["id"])
    to_reporter = {**flow.feedback_body("reporter"), "result": TO_REPORTER}
    await call(client, "POST", url(event_id, "/feedback"), cast.desk, json=to_reporter, expect=201)
    await flow.satisfaction(client, cast.desk, event_id, score=4)
    await flow.add_action(client, cast.handler, event_id, "IT")
    return event_id


def _assert_reporter_event(event: JSON, *, detail: bool) -> None:
    assert event["view"] == "reporter"
    extra = {"feedback", "satisfaction"} if detail else set()
    assert set(event) == REPORTER_EVENT_FIELDS | {"view"} | extra
    for field in STAFF_ONLY_FIELDS:
        assert field not in event
    for secret in SECRETS:
        assert secret not in str(event)


async def _everything(client: httpx.AsyncClient, actor: Actor, event_id: str) -> dict[str, Any]:
    return {
        "event": await call(client, "GET", url(event_id), actor),
        "list": await call(client, "GET", "/v1/events", actor),
        "timeline": await flow.timeline(client, actor, event_id),
        "notes": await call(client, "GET", url(event_id, "/notes"), actor),
        "checklist": await call(client, "GET", url(event_id, "/checklist"), actor),
        "actions": await call(client, "GET", url(event_id, "/actions"), actor),
    }


async def test_a_reporter_sees_their_report_and_the_answer_not_the_internal_work(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event_id = await _handled_event(client, cast, cast.reporter)
    seen = await _everything(client, cast.reporter, event_id)

    event = seen["event"]
    _assert_reporter_event(event, detail=True)
    assert (event["status"], event["category"]) == ("feedback_given", "business_issue")
    assert event["reporter"]["name"] == intake_body()["reporter"]["name"]
    assert None not in (event["respond_by"], event["resolve_by"], event["feedback_by"])
    assert [f["result"] for f in event["feedback"]] == [TO_REPORTER]
    assert event["satisfaction"] == {
        "score": 4,
        "comment": "Quick and polite",
        "unreachable": False,
    }

    [item] = [i for i in seen["list"]["items"] if i["id"] == event_id]
    _assert_reporter_event(item, detail=False)

    timeline = seen["timeline"]
    assert timeline["chain_valid"] is True
    for secret in (*SECRETS, TO_REPORTER, str(cast.handler.id), str(cast.desk.id)):
        assert secret not in str(timeline)
    assert timeline["items"][0]["actor_id"] == str(cast.reporter.id)  # their own intake
    assert {e["actor_id"] for e in timeline["items"][1:]} == {None}

    assert [n["body"] for n in seen["notes"]] == [FOR_REPORTER]
    codes = {i["code"] for i in seen["checklist"]["items"]}
    assert codes <= REPORTER_CHECKLIST_CODES
    assert {"reporter.contact", "feedback.reporter", "satisfaction"} <= codes
    assert seen["actions"] == []

    # Staff still see everything.
    staff = await _everything(client, cast.desk, event_id)
    assert staff["event"]["view"] == "staff"
    assert staff["event"]["steps"][0]["title"] == STEP_TITLE
    assert staff["event"]["steps"][0]["note"] == DROP_NOTE
    assert staff["event"]["assignee_id"] == str(cast.handler.id)
    assert staff["event"]["grading"] is not None
    assert staff["event"]["routing"] is not None
    assert staff["event"]["lead_department"] == "IT"
    [staff_item] = [i for i in staff["list"]["items"] if i["id"] == event_id]
    assert (staff_item["view"], staff_item["assignee_id"]) == ("staff", str(cast.handler.id))
    assert {n["body"] for n in staff["notes"]} == {INTERNAL_NOTE, FOR_REPORTER}
    assert DROP_NOTE in str(staff["timeline"])
    assert len(staff["actions"]) == 1
    assert len(staff["checklist"]["items"]) > len(seen["checklist"]["items"])
    handler = await call(client, "GET", url(event_id), cast.handler)
    assert (handler["view"], handler["steps"][0]["title"]) == ("staff", STEP_TITLE)


async def test_an_integration_gets_the_reporter_view_also_when_its_external_ref_returns(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    bridge = await make_actor(Role.INTEGRATION)
    body = intake_body(external_ref={"system": "crm", "id": "T-1"})
    created = await call(client, "POST", "/v1/events", bridge, json=body, expect=201)
    _assert_reporter_event(created, detail=True)
    event_id = created["id"]
    await flow.classify(client, cast.desk, event_id, BUSINESS_ISSUE)
    await flow.assign(client, cast.desk, event_id, assignee=cast.handler)
    await call(
        client, "PUT", url(event_id, "/plan"), cast.handler, json=_plan_with_secret(cast.handler)
    )

    known = await call(client, "POST", "/v1/events", bridge, json=body, expect=200)
    _assert_reporter_event(known, detail=True)
    assert known["status"] == "in_progress"
    got = await call(client, "GET", url(event_id), bridge)
    _assert_reporter_event(got, detail=True)
    assert got == known
    # The intake desk's own intake is answered in the staff view.
    desk_made = await call(client, "POST", "/v1/events", cast.desk, json=intake_body(), expect=201)
    assert desk_made["view"] == "staff"
    assert desk_made["steps"] == []


def _plan_with_secret(owner: Actor) -> JSON:
    plan = flow.plan_body(owner)
    plan["steps"][0]["title"] = STEP_TITLE
    return plan


async def test_staff_of_an_uninvolved_department_see_what_they_reported_as_its_reporter(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """An HR handler reports an IT problem: for that event they are its reporter, while the
    events their department leads stay in the staff view, in the same list."""
    cast = await flow.make_cast(make_actor, "IT")
    hr_handler = await make_actor(Role.HANDLER, department="HR")
    hr_cast = Cast(
        desk=cast.desk,
        handler=hr_handler,
        head=await make_actor(Role.DEPT_HEAD, department="HR"),
        supervisor=cast.supervisor,
        reporter=cast.reporter,
    )
    reported = await _handled_event(client, cast, hr_handler)
    hr_led = await flow.walk(client, hr_cast, PUBLIC_HEALTH, Status.ASSIGNED)
    assert hr_led["lead_department"] == "HR"

    seen = await _everything(client, hr_handler, reported)
    _assert_reporter_event(seen["event"], detail=True)
    assert [n["body"] for n in seen["notes"]] == [FOR_REPORTER]
    assert seen["actions"] == []
    for secret in SECRETS:
        assert secret not in str(seen["timeline"])
    views = {i["id"]: i["view"] for i in seen["list"]["items"]}
    assert (views[reported], views[hr_led["id"]]) == ("reporter", "staff")
    led = await call(client, "GET", url(hr_led["id"]), hr_handler)
    assert (led["view"], led["lead_department"]) == ("staff", "HR")
    # The intake answer of a handler is the reporter view too: nobody is involved yet.
    made = await call(client, "POST", "/v1/events", hr_handler, json=intake_body(), expect=201)
    assert made["view"] == "reporter"


async def test_the_openapi_document_shows_both_views(app: FastAPI) -> None:
    spec = app.openapi()
    get = spec["paths"]["/v1/events/{event_id}"]["get"]["responses"]["200"]
    schema = get["content"]["application/json"]["schema"]
    refs = {s["$ref"].rsplit("/", 1)[1] for s in schema["oneOf"]}
    assert refs == {"EventDetail", "EventReporterDetail"}
    assert schema["discriminator"]["propertyName"] == "view"
    items = spec["components"]["schemas"]["EventPage"]["properties"]["items"]["items"]
    assert {s["$ref"].rsplit("/", 1)[1] for s in items["oneOf"]} == {
        "EventRead",
        "EventReporterRead",
    }
    schemas = spec["components"]["schemas"]
    reporter = schemas["EventReporterDetail"]["properties"]
    assert "steps" not in reporter
    assert "assignee_id" not in reporter
    for name in ("EventRead", "EventDetail", "EventReporterRead", "EventReporterDetail"):
        assert "view" in schemas[name]["required"], name


async def test_the_reporter_view_has_no_hashes_nor_staff_authors(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """Review of issue 10, item 2: an entry's hash is SHA-256 of content the reporter view
    hides, so a guess of that content (a note, a step title) could be confirmed offline: the
    reporter view leaves out `hash` and `prev_hash` (its `chain_valid` is checked on the
    whole entries), and the author of a note is no staff member's id."""
    cast = await flow.make_cast(make_actor, "IT")
    event_id = await _handled_event(client, cast, cast.reporter)

    timeline = await flow.timeline(client, cast.reporter, event_id)
    assert timeline["chain_valid"] is True
    assert {(e["prev_hash"], e["hash"]) for e in timeline["items"]} == {(None, None)}
    staff = await flow.timeline(client, cast.desk, event_id)
    assert all(e["hash"] and e["prev_hash"] for e in staff["items"])
    for entry in staff["items"]:
        assert entry["hash"] not in str(timeline)

    notes: list[JSON] = (
        await client.get(url(event_id, "/notes"), headers=cast.reporter.headers)
    ).json()
    assert [(n["body"], n["author_id"]) for n in notes] == [(FOR_REPORTER, None)]
    staff_notes: list[JSON] = (
        await client.get(url(event_id, "/notes"), headers=cast.desk.headers)
    ).json()
    assert {n["author_id"] for n in staff_notes} == {str(cast.desk.id)}
