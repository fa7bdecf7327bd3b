"""Severity grading from impact facts, with the rule ids that fired (R3.2.2)."""

from decimal import Decimal
from enum import Enum
from typing import Final, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.rules import (
    SEVERITY_RANK,
    Category,
    ImpactFacts,
    Outage,
    Safety,
    Scope,
    Severity,
    default_policy,
    grade,
    max_severity,
)
from app.rules.policy import GradingRule

POLICY: Final = default_policy()
E = TypeVar("E", bound=Enum)
BUSINESS: Final = Category.BUSINESS_ISSUE
COMPLAINT: Final = Category.CUSTOMER_COMPLAINT


@pytest.mark.parametrize(
    ("facts", "category", "urgent", "severity", "rule_ids"),
    [
        # general: nothing fires
        (ImpactFacts(), BUSINESS, False, Severity.GENERAL, ()),
        (ImpactFacts(scope=Scope.MULTI_DEPARTMENT), BUSINESS, False, Severity.GENERAL, ()),
        (ImpactFacts(customers_affected=9), BUSINESS, False, Severity.GENERAL, ()),
        (ImpactFacts(financial_loss=9999.99), BUSINESS, False, Severity.GENERAL, ()),
        (ImpactFacts(key_account=True), BUSINESS, False, Severity.GENERAL, ()),
        # major, one rule each
        (
            ImpactFacts(system_outage=Outage.FULL),
            BUSINESS,
            False,
            Severity.MAJOR,
            ("major.full_outage",),
        ),
        (
            ImpactFacts(safety=Safety.INJURY),
            Category.EMERGENCY,
            False,
            Severity.MAJOR,
            ("major.safety_injury",),
        ),
        (
            ImpactFacts(reputation_risk=True),
            COMPLAINT,
            False,
            Severity.MAJOR,
            ("major.reputation_risk",),
        ),
        (
            ImpactFacts(financial_loss=100_000),
            BUSINESS,
            False,
            Severity.MAJOR,
            ("major.financial_loss",),
        ),
        (
            ImpactFacts(financial_loss=Decimal("100000.00")),
            BUSINESS,
            False,
            Severity.MAJOR,
            ("major.financial_loss",),
        ),
        (
            ImpactFacts(customers_affected=100),
            COMPLAINT,
            False,
            Severity.MAJOR,
            ("major.customers_affected",),
        ),
        (
            ImpactFacts(scope=Scope.COMPANY),
            Category.INTERNAL_COORDINATION,
            False,
            Severity.MAJOR,
            ("major.company_scope",),
        ),
        (
            ImpactFacts(key_account=True),
            COMPLAINT,
            False,
            Severity.MAJOR,
            ("major.key_account_complaint",),
        ),
        # important, one rule each
        (
            ImpactFacts(departments_needed=2),
            BUSINESS,
            False,
            Severity.IMPORTANT,
            ("important.departments_needed",),
        ),
        (
            ImpactFacts(system_outage=Outage.PARTIAL),
            BUSINESS,
            False,
            Severity.IMPORTANT,
            ("important.partial_outage",),
        ),
        (
            ImpactFacts(customers_affected=10),
            COMPLAINT,
            False,
            Severity.IMPORTANT,
            ("important.customers_affected",),
        ),
        (
            ImpactFacts(customers_affected=99),
            COMPLAINT,
            False,
            Severity.IMPORTANT,
            ("important.customers_affected",),
        ),
        (
            ImpactFacts(financial_loss=Decimal("10000")),
            BUSINESS,
            False,
            Severity.IMPORTANT,
            ("important.financial_loss",),
        ),
        (
            ImpactFacts(financial_loss=99_999.99),
            BUSINESS,
            False,
            Severity.IMPORTANT,
            ("important.financial_loss",),
        ),
        (
            ImpactFacts(safety=Safety.MINOR),
            BUSINESS,
            False,
            Severity.IMPORTANT,
            ("important.minor_safety",),
        ),
        (ImpactFacts(), Category.EMERGENCY, False, Severity.IMPORTANT, ("important.emergency",)),
        (ImpactFacts(), BUSINESS, True, Severity.IMPORTANT, ("important.urgent",)),
        # several rules of the winning level are all reported, in policy order
        (
            ImpactFacts(system_outage=Outage.FULL, customers_affected=500, reputation_risk=True),
            BUSINESS,
            False,
            Severity.MAJOR,
            ("major.full_outage", "major.reputation_risk", "major.customers_affected"),
        ),
        (
            ImpactFacts(departments_needed=3, safety=Safety.MINOR),
            Category.EMERGENCY,
            True,
            Severity.IMPORTANT,
            (
                "important.departments_needed",
                "important.minor_safety",
                "important.emergency",
                "important.urgent",
            ),
        ),
        # the first matching level wins: important rules are not listed for a major event
        (
            ImpactFacts(system_outage=Outage.FULL, departments_needed=4),
            Category.EMERGENCY,
            True,
            Severity.MAJOR,
            ("major.full_outage",),
        ),
    ],
)
def test_grading_rule_table(
    facts: ImpactFacts,
    category: Category,
    urgent: bool,
    severity: Severity,
    rule_ids: tuple[str, ...],
) -> None:
    grading = grade(facts, category=category, urgent=urgent, policy=POLICY)
    assert (grading.severity, grading.rule_ids) == (severity, rule_ids)


def test_key_account_makes_only_complaints_major() -> None:
    facts = ImpactFacts(key_account=True)
    assert grade(facts, category=COMPLAINT, urgent=False, policy=POLICY).severity == "major"
    for category in (BUSINESS, Category.INTERNAL_COORDINATION, Category.EMERGENCY):
        assert grade(facts, category=category, urgent=False, policy=POLICY).severity != "major"


@pytest.mark.parametrize(
    ("rule", "facts", "fires"),
    [
        (GradingRule(id="r", fact="scope", op="gte", value="department"), {"scope": "team"}, False),
        (
            GradingRule(id="r", fact="scope", op="gte", value="department"),
            {"scope": "company"},
            True,
        ),
        (GradingRule(id="r", fact="scope", op="in", value=("team",)), {"scope": Scope.TEAM}, True),
        (GradingRule(id="r", fact="scope", op="gte", value="team"), {"scope": "galaxy"}, False),
        (GradingRule(id="r", fact="urgent", op="is_true"), {}, False),
        (GradingRule(id="r", fact="urgent", op="is_true"), {"urgent": 1}, False),
        (GradingRule(id="r", fact="urgent", op="eq", value=False), {"urgent": False}, True),
        (
            GradingRule(id="r", fact="customers_affected", op="gte", value=5),
            {"customers_affected": "many"},
            False,
        ),
        (
            GradingRule(id="r", fact="customers_affected", op="eq", value=5),
            {"customers_affected": 5},
            True,
        ),
    ],
)
def test_grading_rule_matches(rule: GradingRule, facts: dict[str, object], fires: bool) -> None:
    assert rule.matches(facts) is fires


@pytest.mark.parametrize(
    ("a", "b", "more_severe"),
    [
        (Severity.GENERAL, Severity.MAJOR, Severity.MAJOR),
        (Severity.IMPORTANT, Severity.GENERAL, Severity.IMPORTANT),
        (Severity.MAJOR, Severity.MAJOR, Severity.MAJOR),
    ],
)
def test_max_severity_picks_the_more_severe(
    a: Severity, b: Severity, more_severe: Severity
) -> None:
    assert max_severity(a, b) == more_severe


def _at_least(options: type[E], current: E) -> st.SearchStrategy[E]:
    members = list(options)
    return st.sampled_from(members[members.index(current) :])


@st.composite
def _facts_and_worse(draw: st.DrawFn) -> tuple[ImpactFacts, bool, ImpactFacts, bool]:
    scope = draw(st.sampled_from(list(Scope)))
    outage = draw(st.sampled_from(list(Outage)))
    safety = draw(st.sampled_from(list(Safety)))
    departments = draw(st.integers(0, 5))
    customers = draw(st.integers(0, 300))
    loss = draw(st.decimals(0, 300_000, places=2))
    reputation, key_account, urgent = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    base = ImpactFacts(
        scope=scope,
        departments_needed=departments,
        customers_affected=customers,
        system_outage=outage,
        safety=safety,
        financial_loss=loss,
        reputation_risk=reputation,
        key_account=key_account,
    )
    worse = ImpactFacts(
        scope=draw(_at_least(Scope, scope)),
        departments_needed=departments + draw(st.integers(0, 5)),
        customers_affected=customers + draw(st.integers(0, 300)),
        system_outage=draw(_at_least(Outage, outage)),
        safety=draw(_at_least(Safety, safety)),
        financial_loss=loss + draw(st.decimals(0, 300_000, places=2)),
        reputation_risk=reputation or draw(st.booleans()),
        key_account=key_account or draw(st.booleans()),
    )
    return base, urgent, worse, urgent or draw(st.booleans())


@given(pair=_facts_and_worse(), category=st.sampled_from(list(Category)))
def test_adding_a_more_severe_fact_never_lowers_the_severity(
    pair: tuple[ImpactFacts, bool, ImpactFacts, bool], category: Category
) -> None:
    base, urgent, worse, worse_urgent = pair
    before = grade(base, category=category, urgent=urgent, policy=POLICY).severity
    after = grade(worse, category=category, urgent=worse_urgent, policy=POLICY).severity
    assert SEVERITY_RANK[after] >= SEVERITY_RANK[before]


@given(
    facts=st.builds(
        ImpactFacts,
        scope=st.sampled_from(list(Scope)),
        departments_needed=st.integers(0, 5),
        customers_affected=st.integers(0, 300),
        system_outage=st.sampled_from(list(Outage)),
        safety=st.sampled_from(list(Safety)),
        financial_loss=st.floats(0, 300_000),
        reputation_risk=st.booleans(),
        key_account=st.booleans(),
    ),
    category=st.sampled_from(list(Category)),
    urgent=st.booleans(),
)
def test_fired_rules_belong_to_the_graded_level(
    facts: ImpactFacts, category: Category, urgent: bool
) -> None:
    grading = grade(facts, category=category, urgent=urgent, policy=POLICY)
    assert all(rule_id.startswith(f"{grading.severity}.") for rule_id in grading.rule_ids)
    assert (grading.severity == Severity.GENERAL) == (grading.rule_ids == ())
