"""The words of the regulation as string enums; their values are the API contract."""

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeVar

E = TypeVar("E", bound=StrEnum)


class Status(StrEnum):
    """Lifecycle states of an event (R1.3, R3)."""

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


class Activity(StrEnum):
    """Actions on an event that leave its status as it is (R3.3.2, R3.4, R3.5.2, R6)."""

    ADD_NOTE = "add_note"
    UPDATE_STEP = "update_step"
    FEEDBACK_TO_INTAKE = "feedback_to_intake"
    DECIDE_FEEDBACK = "decide_feedback"
    RECORD_SATISFACTION = "record_satisfaction"
    CREATE_SURVEY_LINK = "create_survey_link"
    ADD_ACTION = "add_action"
    COMPLETE_ACTION = "complete_action"
    VERIFY_ACTION = "verify_action"


class StepStatus(StrEnum):
    """R3.3.2: a plan step is open, done, or dropped with a reason."""

    OPEN = "open"
    DONE = "done"
    DROPPED = "dropped"


class ActionStatus(StrEnum):
    """R3.5.2: an improvement action is open or done; verifying it is a separate record."""

    OPEN = "open"
    DONE = "done"


class Audience(StrEnum):
    """R3.4.1: feedback goes from the department to the intake desk, then to the reporter."""

    INTAKE = "intake"
    REPORTER = "reporter"


class Decision(StrEnum):
    """R3.4.1, R4.1: what the intake desk decides on the department's feedback."""

    ACCEPT = "accept"
    RETURN = "return"


class FeedbackOutcome(StrEnum):
    """R3.4.1, R4.1: the decision as the feedback record keeps it."""

    ACCEPTED = "accepted"
    RETURNED = "returned"


class NoteKind(StrEnum):
    """R3.3.2, R6: progress reports, internal notes and contacts with the customer."""

    PROGRESS = "progress"
    INTERNAL = "internal"
    CUSTOMER_CONTACT = "customer_contact"


class NoteVisibility(StrEnum):
    """R6.1, R6.2: internal notes stay among the staff; some are written for the reporter."""

    INTERNAL = "internal"
    REPORTER = "reporter"


class SatisfactionOutcome(StrEnum):
    """R6.2: the reporter's satisfaction was recorded, or they proved unreachable."""

    RECORDED = "recorded"
    UNREACHABLE = "unreachable"


class SatisfactionSource(StrEnum):
    """R6.2: recorded by the intake desk, or answered by the customer through a survey link."""

    DESK = "desk"
    SURVEY = "survey"


# ---- supervision (R5.2, R5.3) --------------------------------------------------------------


class Question(StrEnum):
    """The three questions a spot check asks of every sampled event (R5.2)."""

    INTAKE_TIMELY = "intake_timely"
    PROCESS_FOLLOWED = "process_followed"
    RESULT_EFFECTIVE = "result_effective"


class Answer(StrEnum):
    """An answer to one question of a spot check (R5.2)."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"


class RiskFactor(StrEnum):
    """What makes an event more likely to be sampled (R5.2; issue 14 item 1)."""

    BREACHED_DEADLINE = "breached_deadline"
    REOPENED = "reopened"
    LOW_SATISFACTION = "low_satisfaction"
    MAJOR = "major"


class OrderStatus(StrEnum):
    """The states of a rectification order (R5.3)."""

    ISSUED = "issued"
    RESPONDED = "responded"
    VERIFIED = "verified"
    CLOSED = "closed"


class OrderAction(StrEnum):
    """What moves a rectification order between states (R5.3)."""

    RESPOND = "respond"
    ACCEPT = "accept"
    REJECT = "reject"
    CLOSE = "close"


class SpotCheckStatus(StrEnum):
    """A spot check is open while its items are judged, then completed (R5.2)."""

    OPEN = "open"
    COMPLETED = "completed"


def _ranks(words: type[E]) -> Mapping[E, int]:
    """Each word's rank in its enum's order (declared least to most)."""
    return MappingProxyType({word: rank for rank, word in enumerate(words)})


SEVERITY_RANK: Final = _ranks(Severity)
SCOPE_RANK: Final = _ranks(Scope)
OUTAGE_RANK: Final = _ranks(Outage)
SAFETY_RANK: Final = _ranks(Safety)


def max_severity(a: Severity, b: Severity) -> Severity:
    """Return the more severe of two grades (R3.2.2)."""
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b
