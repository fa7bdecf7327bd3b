"""Policy request/response shapes and the impact facts of product.md section 6."""

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import ConfigDict, Field, PlainSerializer

from app.core.schemas import AwareDatetime, DeptCode, RequestModel, ResponseModel
from app.policy.document import DEFAULT_POLICY_DOCUMENT
from app.rules.clocks import Stage
from app.rules.grading import ImpactFacts
from app.rules.policy import LevelKind
from app.rules.vocabulary import Category, Outage, Safety, Scope, Severity

Subcategory = Annotated[str, Field(min_length=1, max_length=40)]


class Impact(RequestModel):
    """Assessed impact (R3.2.1); every fact optional with a safe default."""

    scope: Scope = Scope.INDIVIDUAL
    departments_needed: Annotated[int, Field(ge=0, le=1000)] = 1
    customers_affected: Annotated[int, Field(ge=0, le=1_000_000_000)] = 0
    system_outage: Outage = Outage.NONE
    safety: Safety = Safety.NONE
    # A JSON number both ways: what a client sends is what it reads back (stored as a number).
    financial_loss: Annotated[
        Decimal,
        Field(ge=0, le=Decimal("1e15"), decimal_places=2),
        PlainSerializer(float, return_type=float, when_used="json"),
    ] = Decimal(0)
    reputation_risk: bool = False
    key_account: bool = False

    def facts(self) -> ImpactFacts:
        return ImpactFacts(**self.model_dump())


class PolicyRead(ResponseModel):
    version: int
    document: dict[str, Any]
    note: str | None
    created_at: datetime


class PolicyUpdate(RequestModel):
    # The OpenAPI example (issue 15): the whole default document, as `PUT /v1/policy` takes it.
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "document": json.loads(json.dumps(DEFAULT_POLICY_DOCUMENT)),
                    "note": "The default policy: R3.2.2 grading, R3.2.3 routing, deadlines",
                }
            ]
        }
    )

    document: dict[str, Any] = Field(
        description="The whole policy document, as `GET /v1/policy` shows it (validated as a "
        "whole: the taxonomy, mapping and thresholds refer to each other)"
    )
    note: Annotated[str, Field(max_length=500)] | None = None


class EvaluateRequest(RequestModel):
    category: Category
    subcategory: Subcategory
    urgent: bool = False
    impact: Impact = Field(default_factory=Impact)
    involved_departments: Annotated[list[DeptCode], Field(max_length=50)] = Field(
        default_factory=list
    )
    reported_at: AwareDatetime | None = None


class GradingRead(ResponseModel):
    severity: Severity
    rule_ids: list[str]
    policy_version: int


class RoutingRead(ResponseModel):
    lead_department: str
    cooperating_departments: list[str]
    rule_id: str


class DeadlinesRead(ResponseModel):
    respond_by: datetime
    resolve_by: datetime
    feedback_by: datetime | None = None
    review_by: datetime | None = None


class LadderRungRead(ResponseModel):
    """When one level of a stage clock's ladder would fire (R1.3.1; issue 12)."""

    stage: Stage
    level: str
    kind: LevelKind
    at: datetime


class EvaluateResult(ResponseModel):
    policy_version: int
    severity: Severity
    grading: GradingRead
    routing: RoutingRead
    deadlines: DeadlinesRead
    ladder: list[LadderRungRead] = Field(
        default_factory=list,
        description="When the warnings and escalations of the respond and resolve clocks would "
        "fire, if each stage started at the report and took its whole time",
    )
    assignment_missing: list[str] = Field(
        default_factory=list,
        description="Gate codes the proposed assignment would fail (e.g. a coordination matter "
        "with fewer than two departments); empty when it could be assigned as proposed",
    )
