"""Severity from the assessed impact of an event (R3.2.2)."""

from dataclasses import dataclass
from decimal import Decimal

from app.rules.policy import Policy
from app.rules.vocabulary import Category, Outage, Safety, Scope, Severity


@dataclass(frozen=True, slots=True, kw_only=True)
class ImpactFacts:
    """What the intake side assessed about an event's impact (R3.2.1)."""

    scope: Scope = Scope.INDIVIDUAL
    departments_needed: int = 1
    customers_affected: int = 0
    system_outage: Outage = Outage.NONE
    safety: Safety = Safety.NONE
    financial_loss: Decimal | float = 0
    reputation_risk: bool = False
    key_account: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Grading:
    """A grade and the ids of the policy rules that produced it (R3.2.2)."""

    severity: Severity
    rule_ids: tuple[str, ...]  # stored with the policy version: "why is this major?"


def fact_values(facts: ImpactFacts, *, category: Category, urgent: bool) -> dict[str, object]:
    """The named facts grading rules may test (R3.2.2)."""
    return {
        "scope": facts.scope,
        "departments_needed": facts.departments_needed,
        "customers_affected": facts.customers_affected,
        "system_outage": facts.system_outage,
        "safety": facts.safety,
        "financial_loss": facts.financial_loss,
        "reputation_risk": facts.reputation_risk,
        "key_account": facts.key_account,
        "category": category,
        "urgent": urgent,
    }


def grade(facts: ImpactFacts, *, category: Category, urgent: bool, policy: Policy) -> Grading:
    """Grade an event from its assessed impact (R3.2.2); the first matching level wins."""
    values = fact_values(facts, category=category, urgent=urgent)
    for level, rules in policy.grading.levels:
        fired = tuple(rule.id for rule in rules if rule.matches(values))
        if fired:
            return Grading(severity=level, rule_ids=fired)
    return Grading(severity=Severity.GENERAL, rule_ids=())
