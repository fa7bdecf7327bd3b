"""Schemathesis hooks of the contract run (loaded by `st run` through SCHEMATHESIS_HOOKS).

Each hook makes a generated request keep a rule the document states in words, because JSON
Schema cannot say it; none of them hides a status code or a response shape:

* the users and keys the run authenticates with (CONTRACT_PROTECTED_IDS) are never changed
  by the run: its stateful phase finds users and keys through the API and, holding an admin
  key, may deactivate, re-role or revoke them, its own included (issue 15: that once blinded
  half a run). Such a call goes to a fresh id instead (a documented 404);
* an `Idempotency-Key` names one request: each call sends a fresh one (the fuzzer draws the
  same few values for different bodies, which the service rightly refuses with 422);
* a period's start comes before its end (`from`/`to`, `created_from`/`created_to`,
  `since`/`until`): the end is moved to a day after the start;
* an integer is sent as a JSON integer (`5`, not `5.0`, which JSON Schema also calls an
  integer and the service refuses as another JSON type), and an amount of money with at
  most two decimals;
* a time is between the years 1900 and 2200, a moment that has happened (`occurred_at`,
  `held_at`...) is not in the future, and a due time (`due_at`) is not in the past;
* what a body names exists: department codes are the shipped ones (product.md section 6),
  users are the caller (CONTRACT_SELF_ID), linked events are left out, and a subcategory is
  one of its category's in the default taxonomy (a 422 names each unknown reference);
* a CSV (`format=csv`) holds every matching row: it takes no `limit` or `cursor`;
* a webhook target must resolve: the run's machine has no outside DNS, so webhook URLs point
  at a local port (the service runs with WEBHOOK_ALLOW_PRIVATE_TARGETS=true).
"""

import os
import re
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import schemathesis

PROTECTED = frozenset(filter(None, os.environ.get("CONTRACT_PROTECTED_IDS", "").split(",")))
PERIODS = (("from", "to"), ("created_from", "created_to"), ("since", "until"))
WEBHOOK_TARGET = "http://127.0.0.1:9/contract-hook"
SELF = os.environ.get("CONTRACT_SELF_ID", "")
DEPARTMENTS = ("CS", "IT", "OPS", "SALES", "LOG", "ADM", "SAF", "HR", "SUP")
DEPARTMENT_FIELDS = frozenset(
    (
        "department",
        "lead_department",
        "cooperating_departments",
        "departments",
        "involved_departments",
    )
)
USER_FIELDS = frozenset(("user_id", "head_id", "owner_id", "assignee_id"))
EVENT_FIELDS = frozenset(("duplicate_of", "recurrence_of", "event_id"))
PAST_FIELDS = frozenset(("occurred_at", "reported_at", "held_at"))
FUTURE_FIELDS = frozenset(("due_at",))
MONEY_FIELDS = frozenset(("financial_loss",))
TAXONOMY = {
    "business_issue": ("workflow", "data_error", "system_failure", "other"),
    "customer_complaint": ("product_quality", "service_attitude", "delivery_time", "other"),
    "internal_coordination": ("communication", "task_allocation", "other"),
    "emergency": ("natural_disaster", "safety_accident", "public_health", "other"),
}
_TIME = re.compile(r"^(\d{4})(-\d\d-\d\d)")


def _moment(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    except ValueError:
        return None


def _ordered(values: Any) -> None:
    """Move each period's end to a day after its start, when both are times."""
    if not isinstance(values, dict):
        return
    for start, end in PERIODS:
        first, last = _moment(values.get(start)), _moment(values.get(end))
        if first is None or last is None:
            continue
        try:
            values[end] = (first + timedelta(days=1)).isoformat()
        except OverflowError:
            values[start], values[end] = last.isoformat(), first.isoformat()


def _time(value: str, *, past: bool = False, future: bool = False) -> str:
    match = _TIME.match(value)
    if match is None:
        return value
    year = int(match.group(1))
    if future and year < 2030:
        return "2030" + value[4:]
    if not 1900 <= year <= 2200 or (past and year > 2025):
        return "2020" + value[4:]
    return value


def _known(key: str, value: Any) -> Any:
    """`value` of the body field `key`, naming only what exists."""
    if key in DEPARTMENT_FIELDS:
        if isinstance(value, str) and value not in DEPARTMENTS:
            return "IT"
        if isinstance(value, list):
            return [v if v in DEPARTMENTS or not isinstance(v, str) else "IT" for v in value]
    if key in USER_FIELDS and isinstance(value, str) and SELF:
        return SELF
    if key in EVENT_FIELDS and isinstance(value, str):
        return None
    if isinstance(value, str):
        return _time(value, past=key in PAST_FIELDS, future=key in FUTURE_FIELDS)
    return _references(value)


def _references(value: Any) -> Any:
    if isinstance(value, list):
        return [_references(item) for item in value]
    if not isinstance(value, dict):
        return value
    known = {key: _known(key, item) for key, item in value.items()}
    category = known.get("category")
    subcategories = TAXONOMY.get(category) if isinstance(category, str) else None
    subcategory = known.get("subcategory")
    if subcategories and isinstance(subcategory, str) and subcategory not in subcategories:
        known["subcategory"] = subcategories[0]
    return known


def _integers(value: Any, key: str = "") -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, float) and key in MONEY_FIELDS:
        return round(value, 2)
    if isinstance(value, list):
        return [_integers(item, key) for item in value]
    if isinstance(value, dict):
        return {name: _integers(item, name) for name, item in value.items()}
    return value


def _drops_a_parameter(case: Any) -> bool:
    """A coverage case that leaves a parameter out on purpose (e.g. `Authorization`, to see
    401): left untouched, or schemathesis re-adds what it left out."""
    data = getattr(getattr(case.meta, "phase", None), "data", None)
    return getattr(getattr(data, "scenario", None), "value", "") == "missing_parameter"


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: Any) -> None:  # noqa: ARG001 (the hook's signature)
    if _drops_a_parameter(case):
        return
    if case.headers:
        for name in list(case.headers):
            if name.lower() == "idempotency-key":
                case.headers[name] = str(uuid.uuid4())
    if case.method.upper() != "GET" and case.path_parameters:
        for name, value in list(case.path_parameters.items()):
            if str(value) in PROTECTED:
                case.path_parameters[name] = str(uuid.uuid4())
    if isinstance(case.query, dict):
        for key, value in list(case.query.items()):
            if isinstance(value, str):
                case.query[key] = _time(value)
    _ordered(case.query)
    if isinstance(case.query, dict) and case.query.get("format") == "csv":
        case.query.pop("limit", None)  # a CSV holds every row: no pages
        case.query.pop("cursor", None)
    if isinstance(case.body, dict):
        case.body = _references(_integers(case.body))
        _ordered(case.body)
        webhooks = case.operation.path.startswith("/v1/webhook-endpoints")
        if webhooks and isinstance(case.body.get("url"), str):
            case.body["url"] = WEBHOOK_TARGET
