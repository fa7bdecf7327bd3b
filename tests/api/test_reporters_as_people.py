"""Reporters as people (issue 16 item 3; product.md sections 1 and 2; R3.1.2, R3.4.1, R6.2).

A person (not a service account) who leaves `reporter` out of an intake is the reporter, with
their name and e-mail address from the directory and `reporter.user_id` set; `reporter.user_id`
may name a directory user (an unknown one is a 422). A person named so sees the event, in the
reporter view, and the feedback given to them, and nothing of other events. A service account
must say who the reporter is, and being named a reporter gives it nothing.
"""

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.directory import service as directory
from app.directory.schemas import ApiKeyCreate, UserCreate
from app.rules.vocabulary import Role, Status
from tests.api import flow
from tests.api.flow import BUSINESS_ISSUE, JSON, call, refused, url
from tests.conftest import Actor, MakeActor, intake_body

TO_REPORTER = "Your invoices were replaced with correctly numbered ones"


def _without_reporter(**overrides: object) -> JSON:
    body = intake_body(**overrides)
    del body["reporter"]
    return body


async def _service_account(maker: async_sessionmaker[AsyncSession]) -> Actor:
    """A helpdesk integration (product.md section 1: a service account)."""
    async with maker() as session:
        user = await directory.create_user(
            session, UserCreate(name="Helpdesk", roles=[Role.INTEGRATION]), service_account=True
        )
        key = await directory.create_api_key(session, ApiKeyCreate(name="hd", user_id=user.id))
        await session.commit()
    return Actor(id=user.id, token=key.token, department=None, roles=(Role.INTEGRATION,))


async def test_an_employee_reports_with_no_reporter_body(
    client: httpx.AsyncClient, reporter: Actor
) -> None:
    me = (await call(client, "GET", "/v1/me", reporter))["user"]
    event = await call(client, "POST", "/v1/events", reporter, json=_without_reporter(), expect=201)
    assert event["reporter"] == {
        "name": me["name"],
        "email": me["email"],
        "phone": None,
        "external_id": None,
        "user_id": str(reporter.id),
    }
    again = await call(client, "GET", url(event["id"]), reporter)
    assert again["reporter"]["user_id"] == str(reporter.id)


async def test_an_urgent_report_of_a_person_without_email_is_recorded(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    """R3.1.2, R3.1.3: never refused for a missing contact; the user is their contact."""
    del make_actor
    async with session_maker() as session:
        user = await directory.create_user(
            session, UserCreate(name="Wang Fang", department="OPS", roles=[Role.REPORTER])
        )
        key = await directory.create_api_key(session, ApiKeyCreate(name="k", user_id=user.id))
        await session.commit()
    person = Actor(id=user.id, token=key.token, department="OPS", roles=(Role.REPORTER,))
    body = _without_reporter(urgent=True, channel="hotline")
    event = await call(client, "POST", "/v1/events", person, json=body, expect=201)
    assert event["reporter"]["name"] == "Wang Fang"
    assert event["reporter"]["email"] is None
    assert event["reporter"]["user_id"] == str(user.id)


async def test_a_service_account_must_name_the_reporter(
    client: httpx.AsyncClient, session_maker: async_sessionmaker[AsyncSession]
) -> None:
    integration = await _service_account(session_maker)
    problem = await refused(client, "POST", "/v1/events", integration, json=_without_reporter())
    assert problem["missing"] == ["reporter.name"]


async def test_an_unknown_reporter_user_id_is_422(client: httpx.AsyncClient, desk: Actor) -> None:
    body = intake_body(reporter={"name": "Ana Ruiz", "user_id": str(uuid.uuid4())})
    problem = await refused(client, "POST", "/v1/events", desk, json=body, status=422)
    assert problem["errors"] == [{"field": "body.reporter.user_id", "message": "unknown user"}]
    # Nothing was written: the desk's list has no such event.
    listed = await call(client, "GET", "/v1/events", desk)
    assert all(e["reporter"]["user_id"] is None for e in listed["items"])


async def test_a_person_names_only_themselves_as_reporter(
    client: httpx.AsyncClient, make_actor: MakeActor, desk: Actor
) -> None:
    """R3.1.2, R4.1: naming another user as reporter lets them see the event, so only the
    intake desk, admins and integrations may do it; a person may name themselves."""
    handler = await make_actor(Role.HANDLER, department="IT")
    colleague = await make_actor(Role.REPORTER)
    other = intake_body(reporter={"name": "Someone", "user_id": str(colleague.id)})
    problem = await refused(client, "POST", "/v1/events", handler, json=other, status=422)
    assert problem["errors"] == [{"field": "body.reporter.user_id", "message": "not the caller"}]
    own = intake_body(reporter={"name": "Me", "user_id": str(handler.id)})
    created = await call(client, "POST", "/v1/events", handler, json=own, expect=201)
    assert created["reporter"]["user_id"] == str(handler.id)
    taken = await call(client, "POST", "/v1/events", desk, json=other, expect=201)
    seen = await client.get(f"/v1/events/{taken['id']}", headers=colleague.headers)
    assert seen.status_code == 200


async def _fed_back(client: httpx.AsyncClient, cast: flow.Cast, reporter_body: JSON) -> str:
    """An event the desk took in for `reporter_body`, handled to feedback_given, with feedback
    given to the reporter."""
    event = await flow.intake(client, cast.desk, BUSINESS_ISSUE, reporter=reporter_body)
    event_id: str = event["id"]
    await flow.classify(client, cast.desk, event_id, BUSINESS_ISSUE)
    await flow.assign(client, cast.desk, event_id, assignee=cast.handler)
    await flow.plan(client, cast.handler, event_id, cast.handler)
    await flow.finish_steps(
        client, cast.handler, await call(client, "GET", url(event_id), cast.desk)
    )
    await flow.resolve(client, cast.handler, event_id)
    to_desk = await call(
        client,
        "POST",
        url(event_id, "/feedback"),
        cast.handler,
        json=flow.feedback_body("intake"),
        expect=201,
    )
    await flow.decide(client, cast.desk, event_id, to_desk["id"])
    to_reporter = {**flow.feedback_body("reporter"), "result": TO_REPORTER}
    await call(client, "POST", url(event_id, "/feedback"), cast.desk, json=to_reporter, expect=201)
    return event_id


async def test_the_reporter_user_sees_their_event_and_its_feedback_and_not_others(
    client: httpx.AsyncClient,
    make_actor: MakeActor,
    session_maker: async_sessionmaker[AsyncSession],
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    person = await make_actor(Role.REPORTER, department="SALES")
    theirs = await _fed_back(
        client, cast, {"name": "Zhao Lei", "phone": "+86 10 1234", "user_id": str(person.id)}
    )
    others = await _fed_back(client, cast, {"name": "Someone else", "phone": "+86 10 5678"})

    event = await call(client, "GET", url(theirs), person)
    assert event["view"] == "reporter"
    assert event["status"] == Status.FEEDBACK_GIVEN
    assert [f["result"] for f in event["feedback"]] == [TO_REPORTER]
    assert "steps" not in event  # the reporter view: nothing of the internal work
    listed = await call(client, "GET", "/v1/events", person)
    assert [e["id"] for e in listed["items"]] == [theirs]
    await refused(client, "GET", url(others), person, status=404)

    # A service account named as the reporter sees nothing of the event (people only).
    integration = await _service_account(session_maker)
    named = await flow.intake(
        client, cast.desk, BUSINESS_ISSUE, reporter={"name": "HD", "user_id": str(integration.id)}
    )
    await refused(client, "GET", url(named["id"]), integration, status=404)


async def test_a_named_reporter_user_is_a_contact_for_the_feedback_gate(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    """R3.4.1: a user is reached through the directory, so `reporter.contact` holds."""
    cast = await flow.make_cast(make_actor, "IT")
    person = await make_actor(Role.REPORTER, department="SALES")
    event = await flow.intake(
        client, cast.desk, BUSINESS_ISSUE, reporter={"name": "Zhao Lei", "user_id": str(person.id)}
    )
    checklist = await call(client, "GET", url(event["id"], "/checklist"), cast.desk)
    contact = [i for i in checklist["items"] if i["code"] == "reporter.contact"]
    assert contact
    assert all(i["done"] for i in contact), contact
