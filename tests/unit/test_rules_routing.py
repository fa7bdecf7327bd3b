"""Lead and cooperating departments from the policy's mapping (R3.2.3)."""

from dataclasses import replace
from typing import Final

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.rules import Category, Policy, Routing, default_policy, route

POLICY: Final = default_policy()
DEPARTMENTS: Final = ("CS", "IT", "OPS", "SALES", "LOG", "ADM", "SAF", "HR", "SUP")


@pytest.mark.parametrize(
    ("category", "subcategory", "involved", "expected"),
    [
        # business problem: the department owning the subcategory, else first involved, else OPS
        (
            Category.BUSINESS_ISSUE,
            "system_failure",
            [],
            Routing(lead="IT", cooperating=(), rule_id="routing.business_issue.subcategory"),
        ),
        (
            Category.BUSINESS_ISSUE,
            "system_failure",
            ["IT", "SALES"],
            Routing(
                lead="IT", cooperating=("SALES",), rule_id="routing.business_issue.subcategory"
            ),
        ),
        (
            Category.BUSINESS_ISSUE,
            "workflow",
            ["LOG"],
            Routing(lead="OPS", cooperating=("LOG",), rule_id="routing.business_issue.subcategory"),
        ),
        (
            Category.BUSINESS_ISSUE,
            "data_error",
            ["SALES", "LOG", "SALES"],
            Routing(
                lead="SALES", cooperating=("LOG",), rule_id="routing.business_issue.first_involved"
            ),
        ),
        (
            Category.BUSINESS_ISSUE,
            "data_error",
            [],
            Routing(lead="OPS", cooperating=(), rule_id="routing.business_issue.fallback"),
        ),
        (
            Category.BUSINESS_ISSUE,
            "other",
            ["HR"],
            Routing(lead="OPS", cooperating=("HR",), rule_id="routing.business_issue.fallback"),
        ),
        (
            Category.BUSINESS_ISSUE,
            "no_longer_in_taxonomy",
            [],
            Routing(lead="OPS", cooperating=(), rule_id="routing.business_issue.fallback"),
        ),
        # complaint: customer service leads, involved departments cooperate
        (
            Category.CUSTOMER_COMPLAINT,
            "delivery_time",
            ["LOG", "CS", "LOG", "SALES"],
            Routing(lead="CS", cooperating=("LOG", "SALES"), rule_id="routing.customer_complaint"),
        ),
        (
            Category.CUSTOMER_COMPLAINT,
            "service_attitude",
            [],
            Routing(lead="CS", cooperating=(), rule_id="routing.customer_complaint"),
        ),
        # coordination: the first involved coordinates, the rest cooperate
        (
            Category.INTERNAL_COORDINATION,
            "task_allocation",
            ["SALES", "LOG", "SALES", "HR"],
            Routing(
                lead="SALES", cooperating=("LOG", "HR"), rule_id="routing.internal_coordination"
            ),
        ),
        (
            Category.INTERNAL_COORDINATION,
            "communication",
            ["HR"],
            Routing(lead="HR", cooperating=(), rule_id="routing.internal_coordination"),
        ),
        (
            Category.INTERNAL_COORDINATION,
            "communication",
            [],
            Routing(lead="CS", cooperating=(), rule_id="routing.internal_coordination.intake"),
        ),
        # emergency: the department the emergency plan names
        (
            Category.EMERGENCY,
            "natural_disaster",
            [],
            Routing(lead="ADM", cooperating=(), rule_id="routing.emergency.plan"),
        ),
        (
            Category.EMERGENCY,
            "safety_accident",
            ["OPS", "SAF"],
            Routing(lead="SAF", cooperating=("OPS",), rule_id="routing.emergency.plan"),
        ),
        (
            Category.EMERGENCY,
            "public_health",
            [],
            Routing(lead="HR", cooperating=(), rule_id="routing.emergency.plan"),
        ),
        (
            Category.EMERGENCY,
            "other",
            [],
            Routing(lead="ADM", cooperating=(), rule_id="routing.emergency.plan"),
        ),
        (
            Category.EMERGENCY,
            "meteor",
            [],
            Routing(lead="CS", cooperating=(), rule_id="routing.emergency.fallback"),
        ),
    ],
)
def test_routing_table(
    category: Category, subcategory: str, involved: list[str], expected: Routing
) -> None:
    assert route(category=category, subcategory=subcategory, involved=involved, policy=POLICY) == (
        expected
    )


def test_complaint_led_by_customer_service() -> None:
    routing = route(
        category=Category.CUSTOMER_COMPLAINT,
        subcategory="product_quality",
        involved=["SALES"],
        policy=POLICY,
    )
    assert (routing.lead, routing.cooperating) == ("CS", ("SALES",))


def _with(changes: dict[str, object], section: str) -> Policy:
    routing = POLICY.routing
    changed = replace(getattr(routing, section), **changes)
    return replace(POLICY, routing=replace(routing, **{section: changed}))


def test_coordination_without_all_involved_leaves_only_the_coordinator() -> None:
    policy = _with({"all_involved": False}, "internal_coordination")
    routing = route(
        category=Category.INTERNAL_COORDINATION,
        subcategory="other",
        involved=["SALES", "LOG"],
        policy=policy,
    )
    assert (routing.lead, routing.cooperating) == ("SALES", ())


def test_emergency_fallback_from_the_policy_leads_unmapped_subcategories() -> None:
    policy = _with({"by_subcategory": {"safety_accident": "SAF"}, "fallback": "ADM"}, "emergency")
    routing = route(
        category=Category.EMERGENCY, subcategory="public_health", involved=[], policy=policy
    )
    assert (routing.lead, routing.rule_id) == ("ADM", "routing.emergency.fallback")


def test_complaint_without_cooperation_names_only_the_lead() -> None:
    policy = _with({"involved_cooperate": False}, "customer_complaint")
    routing = route(
        category=Category.CUSTOMER_COMPLAINT, subcategory="other", involved=["LOG"], policy=policy
    )
    assert routing.cooperating == ()


@given(
    category=st.sampled_from(list(Category)),
    subcategory=st.sampled_from(
        [sub for subs in POLICY.taxonomy.values() for sub in subs] + ["unknown"]
    ),
    involved=st.lists(st.sampled_from(DEPARTMENTS), max_size=6),
)
def test_cooperating_never_contains_the_lead_nor_duplicates(
    category: Category, subcategory: str, involved: list[str]
) -> None:
    routing = route(category=category, subcategory=subcategory, involved=involved, policy=POLICY)
    assert routing.lead not in routing.cooperating
    assert len(set(routing.cooperating)) == len(routing.cooperating)
    assert set(routing.cooperating) <= set(involved)
