"""The bench data set: N events over two years, generated server-side with a fixed seed.

Everything is made by `INSERT ... SELECT ... FROM generate_series` in PostgreSQL; every
"random" value is `hashint8extended(i, seed*100 + k)`, so the data set is identical for the same
(N, seed, anchor hour) whatever the plan or the order of execution.

What it holds (all categories, subcategories, severities, channels, departments):
- departments: the nine default codes; users: 10 intake agents (CS), 5 handlers per department
  and a CRM integration (a service account that sees only the events it created)
- events: created uniformly over the 730 days before the anchor (the current hour); the status
  depends on age (recent: mostly open; older than 60 days: 82 % closed, 6 % cancelled, the rest
  stuck somewhere in the loop); deadlines and stage times consistent with the status; 10 % carry
  an external_ref and were pushed in by the CRM integration, the rest by the intake agents;
  3 % urgent (50 % of emergencies)
- text: half of the events in English, half in Chinese (`TEXTS`), with the search vector intake
  would write (app/core/search_text.py; README, Search)
- timeline_entry: one row per transition reached (1..9 per event, about 7 on average)
- plan_step: two steps per event that got to `in_progress` or beyond
- satisfaction: one per closed event (8 % unreachable, the rest scored 1..5, mostly 4 and 5)

Secondary indexes of event and timeline_entry are dropped before the bulk insert and recreated
after it (same definitions, read from the catalog), then VACUUM ANALYZE and a CHECKPOINT.
Run standalone: `python bench/dataset.py postgresql://... --events 50000`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import time
import uuid
from typing import Any

import asyncpg

DEPARTMENTS = ["CS", "IT", "OPS", "SALES", "LOG", "ADM", "SAF", "HR", "SUP"]
DEPT_NAMES = {
    "CS": "Customer service",
    "IT": "Information technology",
    "OPS": "Operations",
    "SALES": "Sales",
    "LOG": "Logistics",
    "ADM": "Administration",
    "SAF": "Safety",
    "HR": "Human resources",
    "SUP": "Supervision group",
}
HANDLERS_PER_DEPT = 5
AGENTS = 10
CRM_USER = str(uuid.UUID(hashlib.md5(b"bench-crm-integration").hexdigest()))  # bench.crm_uuid()

FUNCTIONS = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE OR REPLACE FUNCTION bench.u(i bigint, k int) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashint8extended(i, k) & 4294967295)::float8 / 4294967296.0 $$;
CREATE OR REPLACE FUNCTION bench.dept_uuid(code text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT md5('bench-dept-' || code)::uuid $$;
CREATE OR REPLACE FUNCTION bench.handler_uuid(code text, k int) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT md5('bench-handler-' || code || '-' || k)::uuid $$;
CREATE OR REPLACE FUNCTION bench.agent_uuid(k int) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT md5('bench-agent-' || k)::uuid $$;
CREATE OR REPLACE FUNCTION bench.crm_uuid() RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT md5('bench-crm-integration')::uuid $$;
"""

DIRECTORY = """
INSERT INTO department (id, code, name, active, created_at, updated_at)
SELECT bench.dept_uuid(code), code, name, true, $1, $1
FROM unnest($2::text[], $3::text[]) AS d(code, name)
ON CONFLICT (code) DO NOTHING;

INSERT INTO app_user (id, name, email, department_id, roles, service_account, active,
                      created_at, updated_at)
SELECT bench.agent_uuid(k), 'Intake agent ' || k, 'agent' || k || '@bench.example',
       bench.dept_uuid('CS'), ARRAY['intake_agent']::varchar[], false, true, $1, $1
FROM generate_series(1, $4::int) k
ON CONFLICT DO NOTHING;

INSERT INTO app_user (id, name, email, department_id, roles, service_account, active,
                      created_at, updated_at)
SELECT bench.handler_uuid(code, k), 'Handler ' || code || ' ' || k,
       lower(code) || '-handler' || k || '@bench.example', bench.dept_uuid(code),
       CASE WHEN k = 1 THEN ARRAY['handler', 'dept_head'] ELSE ARRAY['handler'] END::varchar[],
       false, true, $1, $1
FROM unnest($2::text[]) code, generate_series(1, $5::int) k
ON CONFLICT DO NOTHING;

INSERT INTO app_user (id, name, email, department_id, roles, service_account, active,
                      created_at, updated_at)
VALUES (bench.crm_uuid(), 'CRM integration', NULL, NULL, ARRAY['integration']::varchar[],
        true, true, $1, $1)
ON CONFLICT DO NOTHING;
"""

# The events' text: half in English, half in Chinese (README, Search), from these phrases. The
# Chinese phrases end in punctuation, so that no bigram spans two of them.
# ruff: noqa: RUF001 (full-width Chinese punctuation)
# fmt: off
TEXTS = {
    "EN_TITLES": [
        "Printer offline", "Late delivery", "Invoice mismatch", "Rude staff", "Broken product",
        "Server outage", "Password reset", "Forklift incident", "Water leak", "Missing parcel",
        "Wrong price", "App crash", "Shift conflict", "Data export error", "Slow response",
        "Damaged packaging", "Fire alarm", "Payroll question", "Contract dispute", "Network down",
    ],
    "EN_PREFIXES": [
        "Customer reports that", "Staff noticed that", "A supplier says that",
        "During the night shift", "After the last update", "At the warehouse",
        "On the hotline a caller said", "In the branch office", "A key account states that",
        "The monitoring shows that",
    ],
    "EN_OBJECTS": [
        "the order", "the invoice", "the printer", "the delivery", "the login", "the conveyor",
        "the shipment", "the refund", "the schedule", "the database",
    ],
    "EN_PREDICATES": [
        "failed twice today", "arrived damaged", "was charged twice", "is still missing",
        "stopped working", "caused a minor injury", "took three weeks", "was handled rudely",
        "shows wrong data", "needs urgent attention",
    ],
    "ZH_TITLES": [
        "打印机离线", "快递延误", "发票金额不符", "员工态度恶劣", "产品损坏", "服务器宕机",
        "密码重置", "叉车事故", "仓库漏水", "包裹丢失", "价格错误", "应用闪退", "排班冲突",
        "数据导出失败", "响应缓慢", "包装破损", "火警报警", "工资疑问", "合同纠纷", "网络中断",
    ],
    "ZH_PREFIXES": [
        "客户来电反映：", "员工发现：", "供应商表示：", "夜班期间：", "系统更新后：",
        "仓库现场：", "热线来电称：", "分公司报告：", "大客户投诉：", "监控显示：",
    ],
    "ZH_OBJECTS": [
        "订单，", "发票，", "打印机，", "快递，", "登录，", "传送带，", "货物，", "退款，",
        "排班表，", "数据库，",
    ],
    "ZH_PREDICATES": [
        "今天失败两次。", "到货时已损坏。", "被重复扣款。", "至今仍未送达。", "已停止工作。",
        "造成轻微受伤。", "拖了三个星期。", "处理态度粗鲁。", "显示错误数据。", "需要紧急处理。",
    ],
}
# fmt: on


def _sql_array(values: list[str], cast: str) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + f"]::{cast}[]"


def _with_texts(sql: str) -> str:
    """The placeholders of EVENTS: each phrase list, and each phrase's search vector."""
    from app.core.search_text import search_vector

    for name, phrases in TEXTS.items():
        vectors = [search_vector("", phrase) for phrase in phrases]
        sql = sql.replace(f"@{name}_V@", _sql_array(vectors, "tsvector"))
        sql = sql.replace(f"@{name}@", _sql_array(phrases, "text"))
    return sql


# $1 anchor timestamptz, $2 n, $3 seed (int), $4 lo, $5 hi
EVENTS = """
WITH base AS (
  SELECT i,
    $1::timestamptz - make_interval(secs => 730 * 86400.0 * (1 - (i - bench.u(i, $3*100+1)) / $2))
      AS created_at,
    bench.u(i, $3*100+2) AS u_status, bench.u(i, $3*100+3) AS u_cat,
    bench.u(i, $3*100+4) AS u_sub, bench.u(i, $3*100+5) AS u_sev,
    bench.u(i, $3*100+6) AS u_chan, bench.u(i, $3*100+7) AS u_urg,
    bench.u(i, $3*100+8) AS u_lead, bench.u(i, $3*100+9) AS u_coop,
    bench.u(i, $3*100+10) AS u_t1, bench.u(i, $3*100+11) AS u_t2,
    bench.u(i, $3*100+12) AS u_t3, bench.u(i, $3*100+13) AS u_t4,
    bench.u(i, $3*100+14) AS u_t5, bench.u(i, $3*100+15) AS u_t6,
    bench.u(i, $3*100+16) AS u_txt, bench.u(i, $3*100+17) AS u_rep,
    bench.u(i, $3*100+18) AS u_ext, bench.u(i, $3*100+19) AS u_asg,
    bench.u(i, $3*100+20) AS u_cre, bench.u(i, $3*100+21) AS u_sat,
    bench.u(i, $3*100+26) < 0.5 AS zh
  FROM generate_series($4::bigint, $5::bigint) AS i
  OFFSET 0
), s1 AS (
  SELECT b.*,
    extract(epoch FROM ($1::timestamptz - b.created_at)) / 86400.0 AS age_days,
    width_bucket(b.u_cat, ARRAY[0, .35, .75, .95]::float8[]) AS cat_idx,
    width_bucket(b.u_chan, ARRAY[0, .30, .50, .60, .70, .85, .92, .97]::float8[]) AS chan_idx
  FROM base b
  OFFSET 0
), s2 AS (
  SELECT s.*,
    width_bucket(s.u_status, CASE
      WHEN s.age_days < 7 THEN ARRAY[0, .15, .30, .50, .80, .90, .95, .95, .98]::float8[]
      WHEN s.age_days < 60 THEN ARRAY[0, .02, .05, .13, .33, .45, .55, .65, .95]::float8[]
      ELSE ARRAY[0, .002, .005, .010, .030, .050, .080, .120, .940]::float8[] END) AS st_idx,
    width_bucket(s.u_sev, CASE WHEN s.cat_idx = 4 THEN ARRAY[0, .3, .6]::float8[]
                               ELSE ARRAY[0, .70, .94]::float8[] END) AS sev_idx,
    (s.u_urg < CASE WHEN s.cat_idx = 4 THEN 0.5 ELSE 0.02 END) AS urgent,
    (ARRAY['business_issue', 'customer_complaint', 'internal_coordination', 'emergency'])
      [s.cat_idx] AS category
  FROM s1 s
  OFFSET 0
), s3 AS (
  SELECT s.*,
    CASE WHEN s.st_idx = 9 THEN 1 + floor(s.u_t6 * 3)::int ELSE s.st_idx END AS stage,
    (ARRAY['reported', 'classified', 'assigned', 'in_progress', 'resolved', 'feedback_given',
           'reviewed', 'closed', 'cancelled'])[s.st_idx] AS status,
    CASE s.cat_idx
      WHEN 1 THEN (ARRAY['workflow', 'data_error', 'system_failure', 'other'])
                  [1 + floor(s.u_sub * 4)::int]
      WHEN 2 THEN (ARRAY['product_quality', 'service_attitude', 'delivery_time', 'other'])
                  [1 + floor(s.u_sub * 4)::int]
      WHEN 3 THEN (ARRAY['communication', 'task_allocation', 'other'])[1 + floor(s.u_sub * 3)::int]
      ELSE (ARRAY['natural_disaster', 'safety_accident', 'public_health', 'other'])
           [1 + floor(s.u_sub * 4)::int]
    END AS subcategory,
    CASE WHEN s.urgent THEN 1.0 ELSE 24.0 END AS respond_hours,
    (ARRAY[120.0, 48.0, 24.0])[s.sev_idx] AS resolve_hours
  FROM s2 s
  OFFSET 0
), s4 AS (
  SELECT s.*,
    -- lead department index into DEPARTMENTS (1-based)
    CASE
      WHEN s.category = 'customer_complaint' AND s.u_lead < .7 THEN 1
      WHEN s.category = 'business_issue' AND s.subcategory = 'system_failure' THEN 2
      WHEN s.category = 'business_issue' AND s.subcategory = 'workflow' THEN 3
      WHEN s.category = 'emergency' AND s.u_lead < .7 THEN 7
      ELSE 1 + floor(bench.u(s.i, $3*100+21) * 9)::int
    END AS lead_idx,
    s.created_at + make_interval(secs => 3600 * s.respond_hours * 1.3 * s.u_t1 * s.u_t1)
      AS classified_at0
  FROM s3 s
  OFFSET 0
), s5 AS (
  SELECT s.*,
    s.classified_at0 + make_interval(secs => 7200 * s.u_t2) AS assigned_at0
  FROM s4 s
  OFFSET 0
), s6 AS (
  SELECT s.*,
    s.assigned_at0 + make_interval(secs => 3600 * s.resolve_hours) AS resolve_by0,
    s.assigned_at0 + make_interval(secs => 3600 * s.resolve_hours
        * (0.45 + 0.08 * s.lead_idx) * (-ln(1 - s.u_t3 * 0.999))) AS resolved_at0
  FROM s5 s
  OFFSET 0
), s7 AS (
  SELECT s.*,
    s.resolved_at0 + make_interval(secs => 3 * 86400 * s.u_t4) AS feedback_at0,
    s.resolved_at0 + make_interval(secs => 3 * 86400 * s.u_t4 + 7 * 86400 * s.u_t5)
      AS reviewed_at0,
    s.resolved_at0 + make_interval(secs => 3 * 86400 * s.u_t4 + 7 * 86400 * s.u_t5
                                           + 2 * 86400 * s.u_t6) AS closed_at0,
    CASE WHEN s.status = 'cancelled'
         THEN s.created_at + make_interval(secs => 2 * 86400 * s.u_t6) END AS cancelled_at0,
    (ARRAY['CS', 'IT', 'OPS', 'SALES', 'LOG', 'ADM', 'SAF', 'HR', 'SUP'])[s.lead_idx] AS lead
  FROM s6 s
  OFFSET 0
)
INSERT INTO event (
  id, ref, status, title, description, channel, occurred_at, reported_at, urgent,
  reporter_name, reporter_email, reporter_phone, reporter_external_id, created_by,
  external_system, external_id, involved_departments, involved_people, recurrence_of,
  category, subcategory, severity, impact, grading, intake_department, lead_department,
  cooperating_departments, routing, assignee_id, plan_discussed_with, resolution_result,
  resolution_measures, respond_by, resolve_by, feedback_by, review_by, classified_at,
  assigned_at, resolved_at, feedback_at, reviewed_at, closed_at, cancelled_at, cancel_reason,
  duplicate_of, satisfaction_score, satisfaction_unreachable, version, created_at, updated_at,
  search_vector)
SELECT
  (lpad(to_hex(floor(extract(epoch FROM s.created_at) * 1000)::bigint), 12, '0') || '7'
    || substr(md5($3 || '-' || s.i), 1, 19))::uuid,
  'EV-' || extract(year FROM s.created_at)::int || '-' || lpad(s.i::text, 7, '0'),
  s.status,
  CASE WHEN s.zh THEN (@ZH_TITLES@)[1 + floor(s.u_txt * 20)::int]
       ELSE (@EN_TITLES@)[1 + floor(s.u_txt * 20)::int] END || ' #' || s.i,
  CASE WHEN s.zh THEN
    (@ZH_PREFIXES@)[1 + floor(bench.u(s.i, $3*100+22) * 10)::int] ||
    (@ZH_OBJECTS@)[1 + floor(bench.u(s.i, $3*100+23) * 10)::int] ||
    (@ZH_PREDICATES@)[1 + floor(bench.u(s.i, $3*100+24) * 10)::int] || '编号 ' || s.i || '。'
  ELSE
    (@EN_PREFIXES@)[1 + floor(bench.u(s.i, $3*100+22) * 10)::int] || ' ' ||
    (@EN_OBJECTS@)[1 + floor(bench.u(s.i, $3*100+23) * 10)::int] || ' ' ||
    (@EN_PREDICATES@)[1 + floor(bench.u(s.i, $3*100+24) * 10)::int] || '. Reference ' || s.i || '.'
  END,
  (ARRAY['hotline', 'email', 'chat_group', 'feedback_platform', 'web', 'api', 'walk_in',
         'other'])[s.chan_idx],
  s.created_at - make_interval(secs => 7200 * s.u_t5),
  s.created_at,
  s.urgent,
  'Reporter ' || (s.i % 20000),
  CASE WHEN s.u_rep < .7 THEN 'reporter' || (s.i % 20000) || '@example.com' END,
  CASE WHEN s.u_rep >= .7 THEN '+1 555 ' || lpad((s.i % 10000)::text, 4, '0') END,
  NULL,
  CASE WHEN s.u_ext < .1 THEN bench.crm_uuid()
       ELSE bench.agent_uuid(1 + floor(s.u_cre * 10)::int) END,
  CASE WHEN s.u_ext < .1 THEN 'crm' END,
  CASE WHEN s.u_ext < .1 THEN 'CRM-' || s.i END,
  CASE WHEN s.u_coop > .9 THEN ARRAY[(ARRAY['CS', 'IT', 'OPS', 'SALES', 'LOG', 'ADM', 'SAF',
       'HR', 'SUP'])[1 + floor(bench.u(s.i, $3*100+25) * 9)::int]]::varchar[]
       ELSE '{}'::varchar[] END,
  '{}'::varchar[],
  NULL,
  CASE WHEN s.stage >= 2 THEN s.category END,
  CASE WHEN s.stage >= 2 THEN s.subcategory END,
  CASE WHEN s.stage >= 2 THEN (ARRAY['general', 'important', 'major'])[s.sev_idx] END,
  CASE WHEN s.stage >= 2 THEN jsonb_build_object('scope',
       (ARRAY['individual', 'team', 'department', 'multi_department', 'company'])
       [1 + floor(s.u_sub * 5)::int], 'customers_affected', floor(s.u_t1 * 50)::int) END,
  CASE WHEN s.stage >= 2 THEN jsonb_build_object('rule_ids', '[]'::jsonb,
       'policy_version', 1, 'overridden', false) END,
  'CS',
  CASE WHEN s.stage >= 3 THEN s.lead END,
  CASE WHEN s.stage < 3 THEN '{}'::varchar[]
       WHEN s.category = 'internal_coordination' OR s.u_coop < .25 THEN
         ARRAY[(ARRAY['CS', 'IT', 'OPS', 'SALES', 'LOG', 'ADM', 'SAF', 'HR', 'SUP'])
               [1 + (s.lead_idx + floor(s.u_coop * 4 * 8)::int % 8) % 9]]::varchar[]
       WHEN s.u_coop < .30 THEN
         ARRAY[(ARRAY['CS', 'IT', 'OPS', 'SALES', 'LOG', 'ADM', 'SAF', 'HR', 'SUP'])
               [1 + s.lead_idx % 9],
               (ARRAY['CS', 'IT', 'OPS', 'SALES', 'LOG', 'ADM', 'SAF', 'HR', 'SUP'])
               [1 + (s.lead_idx + 1) % 9]]::varchar[]
       ELSE '{}'::varchar[] END,
  CASE WHEN s.stage >= 3 THEN jsonb_build_object('rule', s.category, 'lead', s.lead) END,
  CASE WHEN s.stage >= 3 THEN bench.handler_uuid(s.lead, 1 + floor(s.u_asg * 5)::int) END,
  '{}'::varchar[],
  CASE WHEN s.stage >= 5 THEN 'Fixed: root cause addressed for case ' || s.i END,
  CASE WHEN s.stage >= 5 THEN 'Measures taken and communicated' END,
  s.created_at + make_interval(secs => 3600 * s.respond_hours),
  CASE WHEN s.stage >= 3 THEN LEAST(s.resolve_by0, $1) END,
  CASE WHEN s.stage >= 5 THEN LEAST(s.resolved_at0 + interval '2 days', $1) END,
  CASE WHEN s.stage >= 6 THEN LEAST(s.feedback_at0 + interval '7 days', $1) END,
  CASE WHEN s.stage >= 2 THEN LEAST(s.classified_at0, $1) END,
  CASE WHEN s.stage >= 3 THEN LEAST(s.assigned_at0, $1) END,
  CASE WHEN s.stage >= 5 THEN LEAST(s.resolved_at0, $1) END,
  CASE WHEN s.stage >= 6 THEN LEAST(s.feedback_at0, $1) END,
  CASE WHEN s.stage >= 7 THEN LEAST(s.reviewed_at0, $1) END,
  CASE WHEN s.stage >= 8 AND s.status = 'closed' THEN LEAST(s.closed_at0, $1) END,
  CASE WHEN s.status = 'cancelled' THEN LEAST(s.cancelled_at0, $1) END,
  CASE WHEN s.status = 'cancelled' THEN 'Duplicate or withdrawn by the reporter' END,
  NULL,
  CASE WHEN s.status = 'closed' AND s.u_sat >= .08 THEN
    width_bucket(s.u_sat, ARRAY[.08, .14, .22, .40, .72]::float8[]) END,
  CASE WHEN s.status = 'closed' THEN s.u_sat < .08 END,
  s.stage + CASE WHEN s.status = 'cancelled' THEN 1 ELSE 0 END,
  s.created_at,
  LEAST($1, GREATEST(s.created_at,
    CASE WHEN s.stage >= 2 THEN s.classified_at0 END,
    CASE WHEN s.stage >= 3 THEN s.assigned_at0 END,
    CASE WHEN s.stage >= 5 THEN s.resolved_at0 END,
    CASE WHEN s.stage >= 6 THEN s.feedback_at0 END,
    CASE WHEN s.stage >= 7 THEN s.reviewed_at0 END,
    CASE WHEN s.stage >= 8 AND s.status = 'closed' THEN s.closed_at0 END,
    s.cancelled_at0)),
  -- app/core/search_text.search_vector(title, description), from each phrase's vector: `||`
  -- shifts the right-hand positions past the left's, as one pass over the whole text does.
  setweight(CASE WHEN s.zh THEN (@ZH_TITLES_V@)[1 + floor(s.u_txt * 20)::int]
                 ELSE (@EN_TITLES_V@)[1 + floor(s.u_txt * 20)::int] END
            || (quote_literal(s.i::text) || ':1')::tsvector, 'A') ||
  CASE WHEN s.zh THEN
    (@ZH_PREFIXES_V@)[1 + floor(bench.u(s.i, $3*100+22) * 10)::int] ||
    (@ZH_OBJECTS_V@)[1 + floor(bench.u(s.i, $3*100+23) * 10)::int] ||
    (@ZH_PREDICATES_V@)[1 + floor(bench.u(s.i, $3*100+24) * 10)::int] ||
    ('''编号'':1 ''号'':2 ' || quote_literal(s.i::text) || ':3')::tsvector
  ELSE
    (@EN_PREFIXES_V@)[1 + floor(bench.u(s.i, $3*100+22) * 10)::int] ||
    (@EN_OBJECTS_V@)[1 + floor(bench.u(s.i, $3*100+23) * 10)::int] ||
    (@EN_PREDICATES_V@)[1 + floor(bench.u(s.i, $3*100+24) * 10)::int] ||
    ('''reference'':1 ' || quote_literal(s.i::text) || ':2')::tsvector
  END
FROM s7 s
"""

# The stage an event reached (1 reported .. 8 closed), from its status / stage times.
STAGE_SQL = """
CASE e.status WHEN 'reported' THEN 1 WHEN 'classified' THEN 2 WHEN 'assigned' THEN 3
  WHEN 'in_progress' THEN 4 WHEN 'resolved' THEN 5 WHEN 'feedback_given' THEN 6
  WHEN 'reviewed' THEN 7 WHEN 'closed' THEN 8
  ELSE 1 + (e.classified_at IS NOT NULL)::int + (e.assigned_at IS NOT NULL)::int END
"""

_STAGES = [
    "reported",
    "classified",
    "assigned",
    "in_progress",
    "resolved",
    "feedback_given",
    "reviewed",
    "closed",
]
STATUS_JSON = ", ".join("'" + json.dumps({"status": st}) + "'" for st in _STAGES)

# $1 from, $2 to (created_at range)
TIMELINE = f"""
WITH ev AS (
  SELECT e.id, e.status, e.created_by, e.assignee_id, e.created_at, e.classified_at,
         e.assigned_at, e.resolved_at, e.feedback_at, e.reviewed_at, e.closed_at,
         e.cancelled_at, {STAGE_SQL} AS stage
  FROM event e WHERE e.created_at >= $1 AND e.created_at < $2
  OFFSET 0
), steps AS (
  SELECT ev.*, g.seq,
         (ev.status = 'cancelled' AND g.seq = ev.stage + 1) AS is_cancel
  FROM ev CROSS JOIN LATERAL generate_series(
    1, ev.stage + CASE WHEN ev.status = 'cancelled' THEN 1 ELSE 0 END) AS g(seq)
  OFFSET 0
)
INSERT INTO timeline_entry (id, event_id, seq, at, actor_id, action, before, after, note,
                            prev_hash, hash)
SELECT
  (substr(replace(s.id::text, '-', ''), 1, 12) || '7'
    || substr(md5(s.id::text || ':' || s.seq), 1, 19))::uuid,
  s.id, s.seq,
  CASE WHEN s.is_cancel THEN s.cancelled_at WHEN s.seq = 1 THEN s.created_at
       WHEN s.seq = 2 THEN s.classified_at WHEN s.seq = 3 THEN s.assigned_at
       WHEN s.seq = 4 THEN s.assigned_at + interval '1 hour' WHEN s.seq = 5 THEN s.resolved_at
       WHEN s.seq = 6 THEN s.feedback_at WHEN s.seq = 7 THEN s.reviewed_at
       ELSE s.closed_at END,
  CASE WHEN s.seq <= 2 OR s.is_cancel THEN s.created_by ELSE s.assignee_id END,
  CASE WHEN s.is_cancel THEN 'cancel' ELSE
    (ARRAY['intake', 'classify', 'assign', 'plan', 'resolve', 'give_feedback', 'review',
           'close'])[s.seq] END,
  CASE WHEN s.seq > 1 THEN (ARRAY[{STATUS_JSON}]::jsonb[])[s.seq - 1] END,
  CASE WHEN s.is_cancel THEN '{{"status": "cancelled"}}'::jsonb
       ELSE (ARRAY[{STATUS_JSON}]::jsonb[])[s.seq] END,
  NULL,
  CASE WHEN s.seq = 1 THEN repeat('0', 64)
       ELSE encode(sha256(convert_to(s.id::text || ':' || (s.seq - 1), 'UTF8')), 'hex') END,
  encode(sha256(convert_to(s.id::text || ':' || s.seq, 'UTF8')), 'hex')
FROM steps s
"""

PLAN_STEPS = f"""
INSERT INTO plan_step (id, event_id, position, title, owner_id, due_at, status, note,
                       completed_at, created_at, updated_at)
SELECT
  (substr(replace(e.id::text, '-', ''), 1, 12) || '7'
    || substr(md5('step' || e.id::text || ':' || k), 1, 19))::uuid,
  e.id, k, (ARRAY['Analyse the cause', 'Fix and confirm with the reporter'])[k],
  e.assignee_id, e.assigned_at + make_interval(days => k),
  CASE WHEN e.resolved_at IS NOT NULL THEN 'done' ELSE 'open' END, NULL,
  e.resolved_at, e.assigned_at, COALESCE(e.resolved_at, e.assigned_at)
FROM event e CROSS JOIN generate_series(1, 2) AS k
WHERE e.created_at >= $1 AND e.created_at < $2
  AND e.assignee_id IS NOT NULL AND e.status <> 'cancelled' AND ({STAGE_SQL}) >= 4
"""

SATISFACTION = """
INSERT INTO satisfaction (id, event_id, score, comment, unreachable, attempts, source,
                          recorded_by, created_at)
SELECT
  (substr(replace(e.id::text, '-', ''), 1, 12) || '7'
    || substr(md5('sat' || e.id::text), 1, 19))::uuid,
  e.id, e.satisfaction_score, NULL, e.satisfaction_unreachable,
  CASE WHEN e.satisfaction_unreachable THEN 3 ELSE 1 END,
  CASE WHEN e.satisfaction_score % 2 = 0 THEN 'survey' ELSE 'desk' END,
  NULL, e.closed_at - interval '1 hour'
FROM event e
WHERE e.created_at >= $1 AND e.created_at < $2 AND e.satisfaction_unreachable IS NOT NULL
"""

SECONDARY = """
SELECT c.conname AS name, 'constraint' AS kind, t.relname AS tab,
       pg_get_constraintdef(c.oid) AS def
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
WHERE t.relname = ANY($1::text[]) AND c.contype = 'u'
UNION ALL
SELECT i.relname, 'index', t.relname, pg_get_indexdef(i.oid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relname = ANY($1::text[]) AND NOT x.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
"""


async def _parallel(url: str, jobs: list[tuple[str, tuple[Any, ...]]], width: int = 2) -> None:
    """Run statements on `width` connections at once (2 cores: 2 backends)."""
    queue: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    async def worker() -> None:
        conn = await asyncpg.connect(url, server_settings={"jit": "off"})
        try:
            await conn.execute("SET session_replication_role = replica")  # no FK triggers
            await conn.execute("SET maintenance_work_mem = '1GB'")
            while not queue.empty():
                sql, args = queue.get_nowait()
                await conn.execute(sql, *args)
        finally:
            await conn.close()

    await asyncio.gather(*(worker() for _ in range(width)))


async def load(url: str, *, events: int, seed: int = 42, chunks: int = 8) -> dict[str, Any]:
    """Load the data set into a migrated, empty database; returns timings and sizes."""
    timings: dict[str, float] = {}
    conn = await asyncpg.connect(url, server_settings={"jit": "off"})
    try:
        # Before anything is dropped: a load into a database that holds events would fail on
        # their keys with the secondary indexes already gone, and leave them gone.
        if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM event)"):
            raise SystemExit("dataset.py loads into an empty database; this one has events")
        anchor = await conn.fetchval("SELECT date_trunc('hour', now())")
        t0 = time.perf_counter()
        await conn.execute(FUNCTIONS)
        args = (anchor, DEPARTMENTS, [DEPT_NAMES[c] for c in DEPARTMENTS])
        departments, agents, handlers, integration = (s for s in DIRECTORY.split(";") if s.strip())
        await conn.execute(departments, *args)
        await conn.execute(agents.replace("$4", "$2"), anchor, AGENTS)
        await conn.execute(handlers.replace("$5", "$3"), anchor, DEPARTMENTS, HANDLERS_PER_DEPT)
        await conn.execute(integration, anchor)
        secondary = await conn.fetch(SECONDARY, ["event", "timeline_entry", "plan_step"])
        for row in secondary:
            if row["kind"] == "constraint":
                await conn.execute(f'ALTER TABLE {row["tab"]} DROP CONSTRAINT "{row["name"]}"')
            else:
                await conn.execute(f'DROP INDEX "{row["name"]}"')
        timings["prepare_s"] = time.perf_counter() - t0
    finally:
        await conn.close()

    t0 = time.perf_counter()
    step = -(-events // chunks)
    jobs = [
        (_with_texts(EVENTS), (anchor, float(events), seed, lo, min(lo + step - 1, events)))
        for lo in range(1, events + 1, step)
    ]
    await _parallel(url, jobs)
    timings["events_s"] = time.perf_counter() - t0

    # time slices of the event table for the child tables
    from datetime import timedelta

    start = anchor - timedelta(days=731)
    bounds = [start + (anchor - start) * k / chunks for k in range(chunks + 1)]
    bounds[-1] = anchor + timedelta(days=1)
    slices = list(itertools.pairwise(bounds))
    t0 = time.perf_counter()
    await _parallel(
        url,
        [(TIMELINE, s) for s in slices]
        + [(PLAN_STEPS, s) for s in slices]
        + [(SATISFACTION, s) for s in slices],
    )
    timings["children_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    recreate: list[tuple[str, tuple[Any, ...]]] = []
    for row in secondary:
        if row["kind"] == "constraint":
            sql = f'ALTER TABLE {row["tab"]} ADD CONSTRAINT "{row["name"]}" {row["def"]}'
        else:
            sql = row["def"]
        recreate.append((sql, ()))
    await _parallel(url, recreate)
    timings["indexes_s"] = time.perf_counter() - t0

    # The words of the loaded texts for prefix searches (intake adds those of its own texts:
    # app/events/repository/hot.py, `KnownWords`), as the search migration fills them.
    t0 = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO search_lexeme (lexeme) SELECT DISTINCT w.lexeme"
            " FROM event, unnest(tsvector_to_array(event.search_vector)) AS w(lexeme)"
            " WHERE w.lexeme !~ '^[0-9]+$' ON CONFLICT DO NOTHING"
        )
    finally:
        await conn.close()
    timings["lexemes_s"] = time.perf_counter() - t0

    conn = await asyncpg.connect(url)
    try:
        t0 = time.perf_counter()
        await conn.execute(
            "VACUUM (ANALYZE) event, timeline_entry, plan_step, satisfaction, app_user, api_key"
        )
        await conn.execute("CHECKPOINT")
        timings["vacuum_s"] = time.perf_counter() - t0
        counts = {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in (
                "event",
                "timeline_entry",
                "plan_step",
                "satisfaction",
                "department",
                "app_user",
            )
        }
        status_mix = {
            r["status"]: r["n"]
            for r in await conn.fetch(
                "SELECT status, count(*) AS n FROM event GROUP BY 1 ORDER BY 2 DESC"
            )
        }
        sizes = {
            r["t"]: r["size"]
            for r in await conn.fetch(
                "SELECT relname AS t, pg_size_pretty(pg_total_relation_size(oid)) AS size "
                "FROM pg_class WHERE relname IN ('event', 'timeline_entry', 'plan_step')"
            )
        }
        span = await conn.fetchrow("SELECT min(created_at) AS lo, max(created_at) AS hi FROM event")
    finally:
        await conn.close()
    return {
        "events": events,
        "seed": seed,
        "anchor": anchor.isoformat(),
        "created_range": [span["lo"].isoformat(), span["hi"].isoformat()],
        "rows": counts,
        "status_mix": status_mix,
        "sizes": sizes,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "secondary_indexes_rebuilt": [r["name"] for r in secondary],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    url = args.url.replace("postgresql+asyncpg://", "postgresql://")
    print(json.dumps(asyncio.run(load(url, events=args.events, seed=args.seed)), indent=2))


if __name__ == "__main__":
    main()
