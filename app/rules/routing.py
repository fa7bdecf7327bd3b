"""The responsible and cooperating departments of an event (R3.2.3)."""

from collections.abc import Sequence
from dataclasses import dataclass

from app.rules.policy import Policy
from app.rules.vocabulary import Category


@dataclass(frozen=True, slots=True, kw_only=True)
class Routing:
    """Who leads, who cooperates, and the routing rule that decided it (R3.2.3)."""

    lead: str
    cooperating: tuple[str, ...]
    rule_id: str  # e.g. "routing.customer_complaint"; stored with the policy version


def _others(departments: Sequence[str], lead: str) -> tuple[str, ...]:
    return tuple(code for code in dict.fromkeys(departments) if code != lead)


def route(
    *, category: Category, subcategory: str, involved: Sequence[str], policy: Policy
) -> Routing:
    """Name the lead and cooperating departments from the policy's mapping (R3.2.3)."""
    involved = tuple(dict.fromkeys(code for code in involved if code))
    routing = policy.routing
    if category == Category.CUSTOMER_COMPLAINT:
        complaint = routing.customer_complaint
        lead = complaint.lead
        cooperating = _others(involved, lead) if complaint.involved_cooperate else ()
        return Routing(lead=lead, cooperating=cooperating, rule_id="routing.customer_complaint")
    if category == Category.INTERNAL_COORDINATION:
        if not involved:
            # Nobody named yet: the intake desk coordinates (R4.1) until departments are known.
            return Routing(
                lead=policy.intake_department,
                cooperating=(),
                rule_id="routing.internal_coordination.intake",
            )
        lead = involved[0]
        together = routing.internal_coordination.all_involved
        return Routing(
            lead=lead,
            cooperating=_others(involved, lead) if together else (),
            rule_id="routing.internal_coordination",
        )
    if category == Category.EMERGENCY:
        emergency = routing.emergency
        if subcategory in emergency.by_subcategory:
            lead, rule_id = emergency.by_subcategory[subcategory], "routing.emergency.plan"
        else:
            lead = emergency.fallback or policy.intake_department
            rule_id = "routing.emergency.fallback"
        cooperating = _others(involved, lead) if emergency.involved_cooperate else ()
        return Routing(lead=lead, cooperating=cooperating, rule_id=rule_id)
    business = routing.business_issue
    if subcategory in business.by_subcategory:
        lead, rule_id = business.by_subcategory[subcategory], "routing.business_issue.subcategory"
    elif subcategory in business.first_involved_for and involved:
        lead, rule_id = involved[0], "routing.business_issue.first_involved"
    else:
        lead, rule_id = business.fallback, "routing.business_issue.fallback"
    cooperating = _others(involved, lead) if business.involved_cooperate else ()
    return Routing(lead=lead, cooperating=cooperating, rule_id=rule_id)
