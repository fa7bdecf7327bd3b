"""The policy document: defaults, validation that lists every problem, round trips (R3, R7.2).

The document's shape is declared once in app.policy.document (issue 11 item 6); the rules get the
same default policy from app.rules.policy.default_policy() without it.
"""

import copy
import json
from typing import Any, Final

import pytest

from app.policy.document import (
    DEFAULT_POLICY_DOCUMENT,
    PolicyDocument,
    PolicyInvalid,
    PolicyProblem,
    parse_policy,
    policy_document,
)
from app.rules import Category, RootCause, Severity, default_policy, department_codes
from app.rules.assessment import override_problems
from app.rules.policy import Policy, WorkingCalendar

SECTION_6_DEPARTMENTS: Final = ("CS", "IT", "OPS", "SALES", "LOG", "ADM", "SAF", "HR", "SUP")
DELETE: Final = object()
CALENDAR: Final[dict[str, Any]] = {
    "timezone": "Europe/Berlin",
    "workdays": [0, 1, 2, 3, 4],
    "start": "09:00",
    "end": "17:00",
    "holidays": ["2026-12-25", "2026-12-24"],
}


def document(*changes: tuple[tuple[str | int, ...], object]) -> dict[str, Any]:
    """A fresh copy of the default document with changes applied at the given key paths."""
    doc: dict[str, Any] = copy.deepcopy(dict(DEFAULT_POLICY_DOCUMENT))
    for path, value in changes:
        node: Any = doc
        for key in path[:-1]:
            node = node[key]
        if value is DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return doc


def problem_paths(doc: object, **kwargs: Any) -> list[str]:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(doc, **kwargs)
    return [problem.path for problem in caught.value.problems]


def test_default_policy_is_valid_and_round_trips() -> None:
    """Issue 11 item 6: the rules' own default (built without pydantic) is the default document."""
    policy = default_policy()
    assert parse_policy(DEFAULT_POLICY_DOCUMENT) == policy
    assert parse_policy(policy_document(policy)) == policy
    # Exactly: the same keys, and whole numbers stay whole (8, not 8.0).
    assert json.dumps(policy_document(policy), sort_keys=True) == json.dumps(
        DEFAULT_POLICY_DOCUMENT, sort_keys=True
    )


def test_default_document_is_plain_json() -> None:
    assert json.loads(json.dumps(DEFAULT_POLICY_DOCUMENT)) == DEFAULT_POLICY_DOCUMENT


def test_policy_document_returns_a_fresh_copy() -> None:
    policy = default_policy()
    doc = policy_document(policy)
    doc["taxonomy"]["emergency"].append("meteor")
    assert "meteor" not in policy_document(policy)["taxonomy"]["emergency"]
    assert "meteor" not in DEFAULT_POLICY_DOCUMENT["taxonomy"]["emergency"]


def test_policy_with_calendar_round_trips() -> None:
    policy = parse_policy(document((("deadlines", "calendar"), CALENDAR)), version=4)
    assert policy.deadlines.calendar is not None
    assert policy.version == 4
    again = parse_policy(policy_document(policy))
    assert again == policy
    assert policy_document(again)["deadlines"]["calendar"] == {
        **CALENDAR,
        "holidays": ["2026-12-24", "2026-12-25"],
    }


def test_version_is_kept_but_not_compared() -> None:
    assert default_policy(7).version == 7
    assert default_policy(7) == default_policy(1)


def test_default_taxonomy_is_section_6() -> None:
    assert dict(default_policy().taxonomy) == {
        "business_issue": ("workflow", "data_error", "system_failure", "other"),
        "customer_complaint": ("product_quality", "service_attitude", "delivery_time", "other"),
        "internal_coordination": ("communication", "task_allocation", "other"),
        "emergency": ("natural_disaster", "safety_accident", "public_health", "other"),
    }


def test_default_root_cause_codes_are_section_6() -> None:
    assert default_policy().root_cause_codes == tuple(RootCause)


def test_default_intake_desk_is_customer_service() -> None:
    assert default_policy().intake_department == "CS"


def test_default_rule_ids_are_stable() -> None:
    grading = default_policy().grading
    assert [rule.id for rule in grading.major] == [
        "major.full_outage",
        "major.safety_injury",
        "major.reputation_risk",
        "major.financial_loss",
        "major.customers_affected",
        "major.company_scope",
        "major.key_account_complaint",
    ]
    assert [rule.id for rule in grading.important] == [
        "important.departments_needed",
        "important.partial_outage",
        "important.customers_affected",
        "important.financial_loss",
        "important.minor_safety",
        "important.emergency",
        "important.urgent",
    ]
    assert grading.rules[Severity.MAJOR] == grading.major


@pytest.mark.parametrize(
    ("severity", "resolve", "review"),
    [
        (Severity.MAJOR, 24, 72),
        (Severity.IMPORTANT, 72, 168),
        (Severity.GENERAL, 120, 168),
    ],
)
def test_default_deadline_hours(severity: Severity, resolve: float, review: float) -> None:
    deadlines = default_policy().deadlines
    assert deadlines.resolve_hours[severity] == resolve
    assert deadlines.review_hours[severity] == review
    assert (deadlines.respond_urgent_hours, deadlines.respond_normal_hours) == (0.5, 8)
    assert deadlines.feedback_hours == 24
    assert deadlines.calendar is None


def test_default_gate_options() -> None:
    gates = default_policy().gates
    assert gates.satisfaction_attempts == 3
    assert gates.complex_min_departments == 2
    assert gates.complex_severities == {Severity.MAJOR}
    assert gates.meeting_severities == {Severity.MAJOR}
    assert gates.actions_severities == {Severity.IMPORTANT, Severity.MAJOR}
    assert gates.survey_ttl_hours == 168


def test_department_codes_lists_every_referenced_department() -> None:
    assert department_codes(default_policy()) == {"CS", "IT", "OPS", "ADM", "SAF", "HR"}


def test_default_policy_uses_only_section_6_departments() -> None:
    policy = parse_policy(DEFAULT_POLICY_DOCUMENT, known_departments=SECTION_6_DEPARTMENTS)
    assert policy == default_policy()


@pytest.mark.parametrize(
    ("path", "value", "problem_path"),
    [
        # top level
        (("colour",), "blue", "colour"),
        (("version",), 3, "version"),
        (("gates",), DELETE, "gates"),
        (("intake_department",), "", "intake_department"),
        # taxonomy
        (("taxonomy", "emergency"), DELETE, "taxonomy.emergency"),
        (("taxonomy", "gossip"), ["rumour"], "taxonomy.gossip"),
        (("taxonomy", "emergency"), [], "taxonomy.emergency"),
        (("taxonomy", "emergency", 1), "natural_disaster", "taxonomy.emergency[1]"),
        (("taxonomy", "emergency", 0), "Natural Disaster", "taxonomy.emergency[0]"),
        # root causes
        (("root_cause_codes",), [], "root_cause_codes"),
        (("root_cause_codes", 1), "process_gap", "root_cause_codes[1]"),
        (("root_cause_codes",), "process_gap", "root_cause_codes"),
        # grading
        (("grading", "minor"), [], "grading.minor"),
        (("grading", "important"), DELETE, "grading.important"),
        (("grading", "major", 3, "value"), -1, "grading.major[3].value"),
        (("grading", "major", 3, "value"), "lots", "grading.major[3].value"),
        (("grading", "major", 3, "value"), float("inf"), "grading.major[3].value"),
        (("grading", "important", 0, "value"), True, "grading.important[0].value"),
        (("grading", "major", 3, "value"), DELETE, "grading.major[3].value"),
        (("grading", "major", 0, "fact"), "weather", "grading.major[0].fact"),
        (("grading", "major", 0, "op"), "lt", "grading.major[0].op"),
        (("grading", "important", 6, "op"), "gte", "grading.important[6].op"),
        (("grading", "major", 0, "value"), "total", "grading.major[0].value"),
        (
            ("grading", "important", 5, "value"),
            ["emergency", "war"],
            "grading.important[5].value[1]",
        ),
        (("grading", "important", 5, "value"), [], "grading.important[5].value"),
        (("grading", "major", 2, "value"), True, "grading.major[2].value"),
        (("grading", "major", 6, "when_category"), "complaint", "grading.major[6].when_category"),
        (("grading", "important", 0, "id"), "major.full_outage", "grading.important[0].id"),
        (("grading", "major", 0, "id"), "", "grading.major[0].id"),
        (("grading", "major", 0, "note"), "why", "grading.major[0].note"),
        (("grading", "major", 0), "full outage", "grading.major[0]"),
        # routing
        (("routing", "gossip"), {}, "routing.gossip"),
        (("routing", "emergency"), DELETE, "routing.emergency"),
        (
            ("routing", "business_issue", "by_subcategory", "printer"),
            "IT",
            "routing.business_issue.by_subcategory.printer",
        ),
        (
            ("routing", "business_issue", "first_involved_for"),
            ["gossip"],
            "routing.business_issue.first_involved_for[0]",
        ),
        (
            ("routing", "business_issue", "first_involved_for"),
            ["workflow"],
            "routing.business_issue.first_involved_for[0]",
        ),
        (("routing", "business_issue", "fallback"), 7, "routing.business_issue.fallback"),
        (
            ("routing", "emergency", "by_subcategory", "meteor"),
            "ADM",
            "routing.emergency.by_subcategory.meteor",
        ),
        (
            ("routing", "emergency", "by_subcategory", "public_health"),
            DELETE,
            "routing.emergency.by_subcategory",
        ),
        (("routing", "customer_complaint", "lead"), DELETE, "routing.customer_complaint.lead"),
        (
            ("routing", "internal_coordination", "min_departments"),
            0,
            "routing.internal_coordination.min_departments",
        ),
        (
            ("routing", "internal_coordination", "all_involved"),
            "yes",
            "routing.internal_coordination.all_involved",
        ),
        # deadlines
        (("deadlines", "resolve_hours", "major"), 0, "deadlines.resolve_hours.major"),
        (("deadlines", "resolve_hours", "major"), -24, "deadlines.resolve_hours.major"),
        (("deadlines", "review_hours", "general"), DELETE, "deadlines.review_hours.general"),
        (("deadlines", "respond_hours", "urgent"), "soon", "deadlines.respond_hours.urgent"),
        (("deadlines", "feedback_hours"), -1, "deadlines.feedback_hours"),
        (("deadlines", "escalate_hours"), 4, "deadlines.escalate_hours"),
        # calendar
        (
            ("deadlines", "calendar"),
            {**CALENDAR, "timezone": "Mars/Olympus"},
            "deadlines.calendar.timezone",
        ),
        (("deadlines", "calendar"), {**CALENDAR, "end": "09:00"}, "deadlines.calendar.end"),
        (("deadlines", "calendar"), {**CALENDAR, "start": "9am"}, "deadlines.calendar.start"),
        (("deadlines", "calendar"), {**CALENDAR, "workdays": []}, "deadlines.calendar.workdays"),
        (
            ("deadlines", "calendar"),
            {**CALENDAR, "workdays": [7]},
            "deadlines.calendar.workdays[0]",
        ),
        (
            ("deadlines", "calendar"),
            {**CALENDAR, "holidays": ["2026-02-30"]},
            "deadlines.calendar.holidays[0]",
        ),
        (
            ("deadlines", "calendar"),
            {**CALENDAR, "holidays": ["25.12.2026"]},
            "deadlines.calendar.holidays[0]",
        ),
        # gates
        (("gates", "satisfaction_attempts"), 0, "gates.satisfaction_attempts"),
        (("gates", "satisfaction_attempts"), "3", "gates.satisfaction_attempts"),
        (("gates", "complex_min_departments"), 0, "gates.complex_min_departments"),
        (("gates", "complex_severities"), ["critical"], "gates.complex_severities[0]"),
        (("gates", "survey_ttl_hours"), 0, "gates.survey_ttl_hours"),
        (("gates", "meeting_severities"), DELETE, "gates.meeting_severities"),
        # the urgent floor (issue 11 item 4)
        (("grading", "urgent_floor"), "critical", "grading.urgent_floor"),
        (("grading", "urgent_floor"), None, "grading.urgent_floor"),
    ],
)
def test_invalid_document_is_rejected_with_the_path_of_the_problem(
    path: tuple[str | int, ...], value: object, problem_path: str
) -> None:
    assert problem_path in problem_paths(document((path, value)))


def test_document_that_is_not_an_object_is_rejected() -> None:
    assert problem_paths(["taxonomy"]) == [""]


def test_every_problem_is_reported_not_just_the_first() -> None:
    doc = document(
        (("grading", "major", 3, "value"), -1),
        (("deadlines", "resolve_hours", "general"), 0),
        (("gates", "satisfaction_attempts"), 0),
        (("routing", "business_issue", "by_subcategory", "printer"), "IT"),
        (("colour",), "blue"),
    )
    assert set(problem_paths(doc)) >= {
        "grading.major[3].value",
        "deadlines.resolve_hours.general",
        "gates.satisfaction_attempts",
        "routing.business_issue.by_subcategory.printer",
        "colour",
    }


def test_unknown_department_codes_are_rejected_when_known_codes_are_given() -> None:
    paths = problem_paths(
        document(),
        known_departments=[code for code in SECTION_6_DEPARTMENTS if code not in ("SAF", "CS")],
    )
    assert paths == [
        "intake_department",
        "routing.customer_complaint.lead",
        "routing.emergency.by_subcategory.safety_accident",
    ]


def test_problems_carry_a_human_message() -> None:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(document((("gates", "satisfaction_attempts"), 0)))
    assert caught.value.problems == [
        PolicyProblem("gates.satisfaction_attempts", "must be at least 1")
    ]
    assert "gates.satisfaction_attempts: must be at least 1" in str(caught.value)


def test_emergency_fallback_covers_unmapped_subcategories() -> None:
    doc = document(
        (("routing", "emergency", "by_subcategory"), {"safety_accident": "SAF"}),
        (("routing", "emergency", "fallback"), "ADM"),
    )
    assert parse_policy(doc).routing.emergency.fallback == "ADM"


def test_optional_routing_refinements_may_be_left_out() -> None:
    doc = document(
        (("routing", "emergency", "fallback"), DELETE),
        (("routing", "emergency", "involved_cooperate"), DELETE),
        (("routing", "business_issue", "involved_cooperate"), DELETE),
        (("routing", "customer_complaint", "involved_cooperate"), DELETE),
        (("deadlines", "calendar"), DELETE),
    )
    assert parse_policy(doc) == default_policy()


def test_taxonomy_covers_every_category() -> None:
    assert set(default_policy().taxonomy) == set(Category)


@pytest.mark.parametrize(
    "changes",
    [
        {"workdays": frozenset()},
        {"workdays": frozenset({7})},
        {"timezone": "Mars/Olympus"},
    ],
)
def test_working_calendar_refuses_impossible_settings(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"workdays|timezone"):
        WorkingCalendar(**{"timezone": "UTC", **changes})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("deadlines", "respond_hours", "normal"), 1e300),
        (("deadlines", "feedback_hours"), 87_601),
        (("gates", "survey_ttl_hours"), 10**400),
        (("deadlines", "resolve_hours", "major"), 10**400),
    ],
)
def test_absurd_hours_are_rejected_so_deadlines_stay_computable(
    path: tuple[str, ...], value: object
) -> None:
    document = copy.deepcopy(dict(DEFAULT_POLICY_DOCUMENT))
    target: dict[str, object] = document
    for key in path[:-1]:
        target = target[key]  # type: ignore[assignment]
    target[path[-1]] = value
    with pytest.raises(PolicyInvalid) as error:
        parse_policy(document)
    assert [p.path for p in error.value.problems] == [".".join(path)]


# --------------------------------------------------------------------------------------------
# The urgent floor is policy data (issue 11 item 4; R3.1.3, R3.2.2)
# --------------------------------------------------------------------------------------------


def test_document_stored_without_an_urgent_floor_still_loads_with_important() -> None:
    """Policy versions stored before issue 11 have no grading.urgent_floor."""
    policy = parse_policy(document((("grading", "urgent_floor"), DELETE)))
    assert policy.grading.urgent_floor is Severity.IMPORTANT
    assert policy == default_policy()


def test_default_urgent_floor_is_important() -> None:
    assert default_policy().grading.urgent_floor is Severity.IMPORTANT
    assert DEFAULT_POLICY_DOCUMENT["grading"]["urgent_floor"] == "important"


def test_urgent_floor_comes_from_the_policy() -> None:
    strict = parse_policy(document((("grading", "urgent_floor"), "major")))
    lenient = parse_policy(document((("grading", "urgent_floor"), "general")))
    assert strict.grading.urgent_floor is Severity.MAJOR
    assert policy_document(strict)["grading"]["urgent_floor"] == "major"

    def problems(graded: Severity, override: Severity, policy: Policy) -> list[str]:
        return override_problems(graded, override, urgent=True, reason="seen", policy=policy)

    default = default_policy()
    assert problems(Severity.MAJOR, Severity.IMPORTANT, strict) == [
        "severity_override.urgent_floor"
    ]
    assert problems(Severity.MAJOR, Severity.IMPORTANT, default) == []
    assert problems(Severity.IMPORTANT, Severity.GENERAL, lenient) == []
    assert problems(Severity.IMPORTANT, Severity.GENERAL, default) == [
        "severity_override.urgent_floor"
    ]


# --------------------------------------------------------------------------------------------
# The words of each problem (the API returns them in the 422 problem's `errors`)
# --------------------------------------------------------------------------------------------

UNKNOWN_OP: Final = "unknown op; one of eq, gte, in, is_true"


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        ([(("colour",), "blue")], [("colour", "unknown key")]),
        ([(("gates",), DELETE)], [("gates", "is required")]),
        ([(("routing",), [])], [("routing", "must be an object")]),
        ([(("root_cause_codes",), "x")], [("root_cause_codes", "must be a list")]),
        ([(("intake_department",), " ")], [("intake_department", "must be a non-empty string")]),
        (
            [(("taxonomy", "emergency"), ["other", "Fire", "other"])],
            [
                ("taxonomy.emergency[1]", "must be a lowercase code (a-z, 0-9, _)"),
                ("taxonomy.emergency[2]", "duplicate 'other'"),
            ],
        ),
        ([(("taxonomy", "emergency"), [])], [("taxonomy.emergency", "must not be empty")]),
        ([(("grading", "major", 0, "op"), "lt")], [("grading.major[0].op", UNKNOWN_OP)]),
        (
            [(("grading", "major", 0, "fact"), "weather")],
            [
                (
                    "grading.major[0].fact",
                    "unknown fact; one of scope, departments_needed, customers_affected, "
                    "system_outage, safety, financial_loss, reputation_risk, key_account, "
                    "category, urgent",
                )
            ],
        ),
        (
            [(("grading", "important", 6, "op"), "gte")],
            [("grading.important[6].op", "op 'gte' does not apply to fact 'urgent'")],
        ),
        (
            [(("grading", "major", 2, "value"), True)],
            [("grading.major[2].value", "is_true takes no value")],
        ),
        ([(("grading", "major", 3, "value"), DELETE)], [("grading.major[3].value", "is required")]),
        (
            [(("grading", "major", 3, "value"), None)],
            [("grading.major[3].value", "must be a number")],
        ),
        (
            [(("grading", "major", 3, "value"), -1)],
            [("grading.major[3].value", "must not be negative")],
        ),
        (
            [(("grading", "major", 3, "value"), 10**16)],
            [("grading.major[3].value", "must be at most 1e+15")],
        ),
        (
            [(("grading", "major", 0, "value"), "total")],
            [("grading.major[0].value", "must be one of none, partial, full")],
        ),
        (
            [(("grading", "important", 5, "value"), [])],
            [("grading.important[5].value", "must not be empty")],
        ),
        (
            [(("grading", "major", 6, "when_category"), "complaint")],
            [
                (
                    "grading.major[6].when_category",
                    "must be one of business_issue, customer_complaint, internal_coordination, "
                    "emergency",
                )
            ],
        ),
        (
            [(("grading", "urgent_floor"), "low")],
            [("grading.urgent_floor", "must be one of general, important, major")],
        ),
        (
            [
                (("grading", "important", 0, "id"), "major.full_outage"),
                (("grading", "important", 1, "id"), "major.full_outage"),
            ],
            [
                ("grading.important[0].id", "duplicate rule id 'major.full_outage'"),
                ("grading.important[1].id", "duplicate rule id 'major.full_outage'"),
            ],
        ),
        (
            [(("routing", "business_issue", "first_involved_for"), ["workflow", "meteor"])],
            [
                (
                    "routing.business_issue.first_involved_for[0]",
                    "'workflow' is also in by_subcategory",
                ),
                ("routing.business_issue.first_involved_for[1]", "unknown subcategory 'meteor'"),
            ],
        ),
        (
            [(("routing", "emergency", "by_subcategory"), {"safety_accident": "SAF"})],
            [
                (
                    "routing.emergency.by_subcategory",
                    f"no department for emergency subcategory {sub!r}",
                )
                for sub in ("natural_disaster", "public_health", "other")
            ],
        ),
        (
            [(("routing", "internal_coordination", "min_departments"), True)],
            [("routing.internal_coordination.min_departments", "must be an integer")],
        ),
        (
            [(("routing", "customer_complaint", "involved_cooperate"), 1)],
            [("routing.customer_complaint.involved_cooperate", "must be true or false")],
        ),
        (
            [(("deadlines", "feedback_hours"), 87_601)],
            [("deadlines.feedback_hours", "must be at most 87600 hours (ten years)")],
        ),
        (
            [(("deadlines", "feedback_hours"), 0)],
            [("deadlines.feedback_hours", "must be greater than 0")],
        ),
        (
            [(("deadlines", "calendar"), {**CALENDAR, "timezone": "Mars/Olympus"})],
            [("deadlines.calendar.timezone", "unknown timezone 'Mars/Olympus'")],
        ),
        (
            [(("deadlines", "calendar"), {**CALENDAR, "timezone": 1})],
            [("deadlines.calendar.timezone", "must be an IANA timezone name")],
        ),
        (
            [(("deadlines", "calendar"), {**CALENDAR, "workdays": [0, 9, 0]})],
            [
                ("deadlines.calendar.workdays[1]", "must be a weekday 0 (Monday) .. 6 (Sunday)"),
                ("deadlines.calendar.workdays[2]", "duplicate weekday 0"),
            ],
        ),
        (
            [(("deadlines", "calendar"), {**CALENDAR, "start": "18:00"})],
            [("deadlines.calendar.end", "must be after start")],
        ),
        (
            [(("deadlines", "calendar"), {**CALENDAR, "start": "24:00"})],
            [("deadlines.calendar.start", "must be a time HH:MM")],
        ),
        (
            [(("deadlines", "calendar"), {**CALENDAR, "holidays": ["2026-12-24", "tomorrow"]})],
            [("deadlines.calendar.holidays[1]", "must be a date YYYY-MM-DD")],
        ),
        (
            [(("gates", "complex_severities"), ["major", "critical"])],
            [("gates.complex_severities[1]", "must be one of general, important, major")],
        ),
    ],
)
def test_each_problem_has_its_path_and_message(
    changes: list[tuple[tuple[str | int, ...], object]], problems: list[tuple[str, str]]
) -> None:
    with pytest.raises(PolicyInvalid) as caught:
        parse_policy(document(*changes))
    assert [(p.path, p.message) for p in caught.value.problems] == problems


def test_problems_in_one_section_are_all_reported() -> None:
    """An invalid item does not hide a repeat or another bad item in the same list."""
    doc = document(
        (("root_cause_codes",), ["process_gap", "Bad", "process_gap", 3]),
        (("grading", "important", 5, "value"), ["war", "emergency", "peace"]),
        (("routing", "business_issue", "fallback"), ""),
        (("routing", "business_issue", "by_subcategory", "printer"), "IT"),
    )
    assert problem_paths(doc) == [
        "root_cause_codes[1]",
        "root_cause_codes[2]",
        "root_cause_codes[3]",
        "grading.important[5].value[0]",
        "grading.important[5].value[2]",
        "routing.business_issue.by_subcategory.printer",
        "routing.business_issue.fallback",
    ]


def test_subcategories_are_checked_only_against_a_valid_taxonomy() -> None:
    doc = document(
        (("taxonomy", "business_issue"), []),
        (("routing", "business_issue", "by_subcategory", "printer"), "IT"),
    )
    assert problem_paths(doc) == ["taxonomy.business_issue"]


def test_the_document_models_are_used_through_parse_policy() -> None:
    """The cross-section checks need the context parse_policy gives them."""
    with pytest.raises(TypeError, match="parse_policy"):
        PolicyDocument.model_validate(DEFAULT_POLICY_DOCUMENT)
