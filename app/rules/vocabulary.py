"""The words of the regulation as string enums; their values are the API contract."""

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Status(StrEnum):
    """Lifecycle states of an event (R3, product.md section 2)."""

    REPORTED = "reported"
    CLASSIFIED = "classified"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FEEDBACK_GIVEN = "feedback_given"
    REVIEWED = "reviewed"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Severity(StrEnum):
    """R3.2.2, least to most severe."""

    GENERAL = "general"
    IMPORTANT = "important"
    MAJOR = "major"


class Category(StrEnum):
    """R2 event categories."""

    BUSINESS_ISSUE = "business_issue"
    CUSTOMER_COMPLAINT = "customer_complaint"
    INTERNAL_COORDINATION = "internal_coordination"
    EMERGENCY = "emergency"


class Channel(StrEnum):
    """R3.1.1 intake channels."""

    HOTLINE = "hotline"
    EMAIL = "email"
    CHAT_GROUP = "chat_group"
    FEEDBACK_PLATFORM = "feedback_platform"
    WEB = "web"
    API = "api"
    WALK_IN = "walk_in"
    OTHER = "other"


class Role(StrEnum):
    """R4 duties and R5.1 supervision as roles a user may hold."""

    REPORTER = "reporter"
    INTAKE_AGENT = "intake_agent"
    HANDLER = "handler"
    DEPT_HEAD = "dept_head"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    INTEGRATION = "integration"


class Scope(StrEnum):
    """R3.2.1 how far the impact reaches, narrowest first."""

    INDIVIDUAL = "individual"
    TEAM = "team"
    DEPARTMENT = "department"
    MULTI_DEPARTMENT = "multi_department"
    COMPANY = "company"


class Outage(StrEnum):
    """R3.2.2 system outage, least to most severe."""

    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"


class Safety(StrEnum):
    """R3.2.2 safety incident, least to most severe."""

    NONE = "none"
    MINOR = "minor"
    INJURY = "injury"


class RootCause(StrEnum):
    """R3.5.1 default root-cause codes (the policy may define its own)."""

    PROCESS_GAP = "process_gap"
    HUMAN_ERROR = "human_error"
    SYSTEM_DEFECT = "system_defect"
    SUPPLIER = "supplier"
    COMMUNICATION = "communication"
    TRAINING = "training"
    EXTERNAL = "external"
    OTHER = "other"


class Action(StrEnum):
    """Lifecycle actions that move an event between states (R3)."""

    CLASSIFY = "classify"
    ASSIGN = "assign"
    PLAN = "plan"
    RESOLVE = "resolve"
    GIVE_FEEDBACK = "give_feedback"
    REVIEW = "review"
    CLOSE = "close"
    CANCEL = "cancel"
    REOPEN = "reopen"
    RETURN_FEEDBACK = "return_feedback"


SEVERITY_RANK: Final[Mapping[Severity, int]] = MappingProxyType(
    {severity: rank for rank, severity in enumerate(Severity)}
)
SCOPE_RANK: Final[Mapping[Scope, int]] = MappingProxyType(
    {scope: rank for rank, scope in enumerate(Scope)}
)
OUTAGE_RANK: Final[Mapping[Outage, int]] = MappingProxyType(
    {outage: rank for rank, outage in enumerate(Outage)}
)
SAFETY_RANK: Final[Mapping[Safety, int]] = MappingProxyType(
    {safety: rank for rank, safety in enumerate(Safety)}
)


def max_severity(a: Severity, b: Severity) -> Severity:
    """Return the more severe of two grades (R3.2.2)."""
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b
