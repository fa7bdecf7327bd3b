"""A realistic example for every request body of the OpenAPI document (issue 15, item 1), by
the body's schema name: the `examples` of its `application/json` media type. (A model may
carry its own instead, as `PolicyUpdate` carries the whole default policy document.) Some are in
Chinese, as many of the service's users write. `tests/test_openapi.py` checks that every
request body has one and that each is valid against its schema."""

from typing import Any, Final

_UUID = "0193a7c2-5e1f-7b3a-9c4d-2f8e6a1b3c5d"
_UUID2 = "0193a7c2-6a2b-7c4d-8e5f-3a9b7c2d4e6f"


def _one(summary: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"summary": summary, "value": value}


EXAMPLES: Final[dict[str, dict[str, dict[str, Any]]]] = {
    "EventCreate": {
        "complaint": _one(
            "A customer complaint by email, with the CRM's ticket id",
            {
                "title": "Parcel delivered three days late",
                "description": "The customer ordered on Monday with next-day delivery and "
                "received the parcel on Friday; she asks for the shipping fee back.",
                "channel": "email",
                "occurred_at": "2026-11-27T09:30:00+08:00",
                "reporter": {"name": "Ana Ruiz", "email": "ana.ruiz@example.com"},
                "external_ref": {"system": "zendesk", "id": "48213"},
                "involved_departments": ["LOG"],
            },
        ),
        "emergency_zh": _one(
            "An urgent safety matter reported on the hotline (Chinese)",
            {
                "title": "仓库B区货架倒塌",
                "description": "今天上午十点左右，仓库B区一排货架倒塌，一名搬运工轻伤，已送医。",  # noqa: RUF001
                "channel": "hotline",
                "urgent": True,
                "reporter": {"name": "王伟", "phone": "+86 138 0013 8000"},
                "involved_departments": ["SAF", "LOG"],
                "involved_people": ["李娜"],
            },
        ),
    },
    "ClassificationIn": {
        "outage": _one(
            "A business problem: the billing system is partly down",
            {
                "category": "business_issue",
                "subcategory": "system_failure",
                "impact": {
                    "scope": "department",
                    "departments_needed": 2,
                    "customers_affected": 40,
                    "system_outage": "partial",
                },
            },
        ),
        "override_zh": _one(
            "A complaint graded up by hand, with the reason (Chinese)",
            {
                "category": "customer_complaint",
                "subcategory": "service_attitude",
                "impact": {"key_account": False, "reputation_risk": False},
                "severity_override": {"severity": "important", "reason": "客户为长期合作伙伴"},
            },
        ),
    },
    "AssignmentIn": {
        "default": _one(
            "The mapping's lead department, with an assignee and a cooperating department",
            {"assignee_id": _UUID, "cooperating_departments": ["SALES"]},
        ),
        "override": _one(
            "Another lead department than the mapping's, with the reason",
            {"lead_department": "OPS", "override_reason": "The fault is in the depot's process"},
        ),
    },
    "PlanIn": {
        "plan": _one(
            "Two steps, discussed with the department heads",
            {
                "steps": [
                    {
                        "title": "Restore the invoice sequence",
                        "owner_id": _UUID,
                        "due_at": "2026-12-02T18:00:00Z",
                    },
                    {
                        "title": "通知受影响的客户",
                        "owner_id": _UUID2,
                        "due_at": "2026-12-03T12:00:00+08:00",
                    },
                ],
                "discussed_with": ["IT head", "财务部 张敏"],
            },
        )
    },
    "StepUpdate": {
        "done": _one("A step done", {"status": "done", "note": "Sequence restored at 14:05"}),
        "dropped": _one(
            "A step dropped, with the reason", {"status": "dropped", "note": "不再需要"}
        ),
    },
    "NoteIn": {
        "progress": _one(
            "A progress report the reporter may read",
            {
                "kind": "progress",
                "body": "The carrier confirmed the delay.",
                "visibility": "reporter",
            },
        ),
        "contact_zh": _one(
            "A customer contact (Chinese)",
            {"kind": "customer_contact", "body": "已电话联系客户，说明处理进度。"},  # noqa: RUF001
        ),
    },
    "ResolutionIn": {
        "default": _one(
            "The result and the measures taken",
            {
                "result": "All duplicated invoices were cancelled and reissued.",
                "measures": "The numbering now comes from one database sequence.",
            },
        )
    },
    "FeedbackIn": {
        "intake": _one(
            "Feedback to the intake desk",
            {
                "audience": "intake",
                "result": "Invoices reissued to both customers.",
                "measures": "One numbering sequence for every branch.",
                "prevention_advice": "Check the sequence after each release.",
            },
        ),
        "reporter_zh": _one(
            "Feedback to the reporter (Chinese)",
            {
                "audience": "reporter",
                "result": "您的包裹延误问题已处理，运费已退还。",  # noqa: RUF001
                "measures": "已与承运商重新约定时效。",
                "prevention_advice": "下单时可选择加急配送。",
            },
        ),
    },
    "FeedbackDecision": {
        "accept": _one("The intake desk accepts the feedback", {"decision": "accept"}),
        "return": _one(
            "The intake desk returns it",
            {"decision": "return", "note": "Say when the refund reaches the customer"},
        ),
    },
    "SatisfactionIn": {
        "score": _one("The reporter's score", {"score": 4, "comment": "处理及时，态度很好"}),  # noqa: RUF001
        "unreachable": _one(
            "The reporter could not be reached after the policy's attempts",
            {"unreachable": True, "attempts": 3},
        ),
    },
    "ReviewIn": {
        "major": _one(
            "A major event's review, with its meeting",
            {
                "causes": "A release reset the invoice counter of one branch.",
                "handling": "Invoices were cancelled and reissued within a day.",
                "result": "No customer was charged twice.",
                "lessons": "Counters must not live in branch configuration.",
                "root_cause_code": "system_defect",
                "meeting": {
                    "held_at": "2026-12-04T10:00:00+08:00",
                    "attendees": ["张敏", "IT head", "Finance head"],
                    "conclusions": "Move numbering to the central sequence; add a release check.",
                },
            },
        )
    },
    "ActionIn": {
        "default": _one(
            "An improvement action",
            {
                "description": "Add an invoice-sequence check to the release checklist",
                "department": "IT",
                "due_at": "2026-12-20T18:00:00+08:00",
            },
        )
    },
    "ActionUpdate": {
        "done": _one(
            "The action is done, with evidence",
            {"status": "done", "evidence": "发布检查表已更新，见 wiki 第 42 页"},  # noqa: RUF001
        )
    },
    "VerificationIn": {
        "effective": _one(
            "Verified effective by someone else",
            {"effective": True, "note": "Two releases since, no duplicate"},
        )
    },
    "CancelIn": {
        "duplicate": _one(
            "A duplicate of another event",
            {"reason": "Reported twice by the same customer", "duplicate_of": _UUID},
        )
    },
    "ReopenIn": {
        "default": _one("The reporter is not satisfied", {"reason": "客户对处理结果不满意"})
    },
    "SurveyAnswer": {
        "default": _one("The customer's answer", {"score": 5, "comment": "Quick and friendly"})
    },
    "DepartmentCreate": {
        "default": _one(
            "A new department",
            {"code": "FIN", "name": "财务部", "kind": "business"},
        )
    },
    "DepartmentUpdate": {
        "rename": _one("A new name and head", {"name": "Finance", "head_id": _UUID})
    },
    "UserCreate": {
        "handler": _one(
            "A handler of the IT department",
            {
                "name": "李娜",
                "email": "li.na@example.com",
                "department": "IT",
                "roles": ["handler"],
            },
        )
    },
    "UserUpdate": {
        "roles": _one("Make a handler also head", {"roles": ["handler", "dept_head"]}),
    },
    "ApiKeyCreate": {
        "default": _one("A key for a user", {"name": "CRM integration", "user_id": _UUID})
    },
    "EvaluateRequest": {
        "default": _one(
            "How would a partial outage hitting 40 customers be graded and routed?",
            {
                "category": "business_issue",
                "subcategory": "system_failure",
                "impact": {"customers_affected": 40, "system_outage": "partial"},
                "involved_departments": ["IT", "SALES"],
            },
        )
    },
    "SpotCheckCreate": {
        "default": _one(
            "A tenth of last month's events, at least one per stratum",
            {
                "from": "2026-11-01T00:00:00+08:00",
                "to": "2026-12-01T00:00:00+08:00",
                "sample_rate": 0.1,
                "min_per_stratum": 1,
                "seed": 20261201,
            },
        )
    },
    "ItemJudgement": {
        "default": _one(
            "The three questions of R5.2",
            {
                "intake_timely": {"answer": "pass"},
                "process_followed": {"answer": "pass"},
                "result_effective": {"answer": "fail", "note": "客户仍在投诉"},
            },
        )
    },
    "RectificationCreate": {
        "default": _one(
            "An order to the logistics department",
            {
                "department": "LOG",
                "demand": "Late deliveries are not fed back within 24 hours: fix the handover.",
                "due_at": "2026-12-15T18:00:00+08:00",
            },
        )
    },
    "RectificationResponseIn": {
        "default": _one(
            "The department's answer",
            {"cause": "交接班没有检查待反馈事项", "measures": "交接班清单增加反馈检查项"},
        )
    },
    "RectificationVerificationIn": {
        "accepted": _one("The supervisor accepts the rectification", {"accepted": True})
    },
    "WebhookEndpointCreate": {
        "default": _one(
            "The CRM's endpoint for closures and SLA breaches",
            {
                "url": "https://crm.example.com/hooks/closed-loop",
                "event_types": ["event.closed", "event.sla_breached"],
                "description": "CRM sync",
            },
        )
    },
    "WebhookEndpointUpdate": {
        "disable": _one("Pause deliveries", {"enabled": False}),
    },
    "ReplayRequest": {
        "default": _one(
            "Send again what was published in one hour",
            {"since": "2026-11-30T08:00:00Z", "until": "2026-11-30T09:00:00Z"},
        )
    },
}
