"""What a status allows besides its transitions (issue 11 item 4): notes, steps, feedback to
the desk and its decision, satisfaction, survey links and improvement actions are in the
lifecycle's table (`rules.lifecycle.IN_STATUS`), so a refusal and the checklist list them."""

import httpx

from app.rules.vocabulary import Status
from tests.api import flow
from tests.api.flow import MakeActor, call, not_allowed, refused, url


async def test_a_refused_activity_names_itself_and_what_the_status_allows(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.IN_PROGRESS)
    problem = await refused(
        client,
        "POST",
        url(event["id"], "/feedback"),
        cast.handler,
        json=flow.feedback_body("intake"),
    )
    assert problem["type"].endswith("/transition-not-allowed")
    assert (problem["action"], problem["status_now"]) == ("feedback_to_intake", "in_progress")
    assert problem["allowed"] == ["plan", "resolve", "add_note", "update_step"]
    checklist = await call(client, "GET", url(event["id"], "/checklist"), cast.desk)
    assert checklist["allowed_actions"] == problem["allowed"]


async def test_after_resolution_the_refusals_list_the_improvement_actions(
    client: httpx.AsyncClient, make_actor: MakeActor
) -> None:
    cast = await flow.make_cast(make_actor, "IT")
    event = await flow.walk(client, cast, flow.BUSINESS_ISSUE, Status.RESOLVED)
    allowed = await not_allowed(client, "POST", url(event["id"], "/survey-link"), cast.desk)
    assert allowed == [
        "give_feedback",
        "reopen",
        "return_feedback",
        "add_note",
        "feedback_to_intake",
        "decide_feedback",
        "add_action",
        "complete_action",
        "verify_action",
    ]
