// One event: its facts, the checklist of its whole path (`GET /v1/events/{id}/checklist`, so
// the console needs no rules of its own), the next allowed actions, the classify and assign
// forms (sent with `If-Match` and the ETag just read), and the timeline.

import { api, get, newIdempotencyKey } from "../api.js";
import { badge, checked, checks, field, h, loading, mount, problemView, select, when } from "../dom.js";
import { label, t } from "../i18n.js";
import { departmentOptions, departments, policy, userNames } from "../session.js";

const FORMS = { classify: classifyForm, assign: assignForm };

export async function render(view, id) {
  mount(view, loading());
  const [event, checklist, timeline, names] = await Promise.all([
    get(`/v1/events/${encodeURIComponent(id)}`),
    get(`/v1/events/${encodeURIComponent(id)}/checklist`),
    get(`/v1/events/${encodeURIComponent(id)}/timeline`),
    userNames(),
  ]);
  const page = { view, id, event: event.data, etag: event.etag, reload: () => render(view, id) };
  const allowed = checklist.data.allowed_actions;
  const forms = await Promise.all(allowed.filter((a) => FORMS[a]).map((a) => FORMS[a](page)));
  mount(view,
    h("p", {}, h("a", { href: "#/events" }, `← ${t("event.back")}`)),
    summary(page.event),
    h("div", { class: "columns" },
      h("div", {},
        h("section", { class: "card", id: "allowed" },
          h("h2", {}, t("event.allowed")),
          allowed.length
            ? h("p", {}, allowed.map((a) => h("span", { class: `chip action${FORMS[a] ? " has-form" : ""}`, "data-action": a }, label(a))))
            : h("p", { class: "muted" }, t("event.noneAllowed")),
          allowed.some((a) => !FORMS[a]) ? h("p", { class: "muted small" }, t("event.otherActions")) : null),
        forms,
        h("section", { class: "card" }, h("h2", {}, t("event.description")),
          h("p", { class: "prose" }, page.event.description))),
      h("div", {},
        checklistView(checklist.data),
        timelineView(timeline.data, names))));
}

function summary(e) {
  const facts = [
    [t("c.status"), badge(e.status)],
    [t("c.severity"), e.severity ? badge(e.severity, "severity") : "—"],
    [t("f.category"), e.category ? `${label(e.category)} / ${label(e.subcategory)}` : "—"],
    [t("c.lead"), e.lead_department ? [e.lead_department, ...(e.cooperating_departments ?? []).map((c) => ` + ${c}`)] : "—"],
    [t("c.reporter"), e.reporter?.name ?? "—"],
    [t("c.channel"), label(e.channel)],
    [t("c.reported"), when(e.reported_at)],
    [t("c.due"), e.sla ? [when(e.sla.due_at), " ", label(e.sla.stage), e.sla.breached ? h("span", { class: "badge late" }, t("overdue")) : null] : "—"],
  ];
  return h("section", { class: "card summary", id: "summary", "data-status": e.status, "data-version": e.version },
    h("div", { class: "head" },
      h("h1", {}, h("span", { class: "ref" }, e.ref), " ", e.title),
      e.urgent ? h("span", { class: "badge late" }, t("urgent")) : null),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

function checklistView(data) {
  const stages = [...new Set(data.items.map((i) => i.stage))];
  return h("section", { class: "card", id: "checklist" },
    h("h2", {}, t("event.checklist")),
    stages.map((stage) => h("div", { class: "stage" },
      h("h3", {}, label(stage)),
      h("ul", { class: "checklist" }, data.items.filter((i) => i.stage === stage).map((i) =>
        h("li", { class: i.done ? "done" : "missing", "data-code": i.code, "data-done": String(i.done) },
          h("span", { class: "mark", "aria-hidden": "true" }, i.done ? "✓" : "○"),
          h("code", {}, i.code), " ", h("span", { class: "muted" }, i.detail)))))));
}

function timelineView(data, names) {
  return h("section", { class: "card", id: "timeline" },
    h("div", { class: "head" }, h("h2", {}, t("event.timeline")),
      h("span", { class: `badge ${data.chain_valid ? "ok" : "late"}` },
        data.chain_valid ? t("event.chainValid") : t("event.chainBroken"))),
    h("ol", { class: "timeline" }, data.items.map((entry) => h("li", {},
      h("span", { class: "when" }, when(entry.at)),
      h("strong", {}, label(entry.action)),
      entry.actor_id && names.has(entry.actor_id) ? h("span", { class: "small" }, ` · ${names.get(entry.actor_id)}`) : null,
      entry.after ? h("div", { class: "muted small" }, changed(entry.after, names)) : null,
      entry.note ? h("p", { class: "small" }, entry.note) : null))));
}

function changed(after, names) {
  return Object.entries(after)
    .filter(([, v]) => v !== null && typeof v !== "object")
    .filter(([k, v]) => !k.endsWith("_id") || names.has(v))
    .slice(0, 5)
    .map(([k, v]) => names.has(v)
      ? `${label(k.endsWith("_id") ? k.slice(0, -3) : k)}: ${names.get(v)}`
      : `${label(k)}: ${k.endsWith("_by") || k.endsWith("_at") ? when(v) : label(v)}`)
    .join(" · ");
}

/** Send one change with the ETag read with the page; on success, read the page again. */
async function send(page, form, path, body) {
  const message = form.querySelector(".message");
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    await api("POST", `/v1/events/${page.event.id}/${path}`, {
      body, ifMatch: page.etag, idempotencyKey: form.dataset.key,
    });
    await page.reload();
  } catch (error) {
    mount(message, problemView(error));
    button.disabled = false;
  }
}

function keyed(form) {
  form.dataset.key = newIdempotencyKey();
  form.addEventListener("input", () => { form.dataset.key = newIdempotencyKey(); });
  return form;
}

const SCOPES = ["individual", "team", "department", "multi_department", "company"];
const OUTAGES = ["none", "partial", "full"];
const SAFETY = ["none", "minor", "injury"];
const SEVERITIES = ["general", "important", "major"];
const options = (codes) => codes.map((c) => [c, label(c)]);

async function classifyForm(page) {
  const taxonomy = (await policy()).taxonomy;
  const categories = Object.keys(taxonomy);
  const subcategory = h("select", { name: "subcategory", id: "subcategory", required: true });
  const category = select("category", options(categories), { value: page.event.category ?? categories[0] });
  const now = page.event;
  const impact = facts(now.impact);
  const fill = () => subcategory.replaceChildren(
    ...(taxonomy[category.value] ?? []).map((s) => h("option", { value: s, selected: s === now.subcategory }, label(s))));
  category.addEventListener("change", fill);
  fill();
  const number = (name, value) => h("input", { type: "number", name, id: name, min: 0, value: impact[name] ?? value });
  const flag = (name) => h("label", { class: "check" }, h("input", { type: "checkbox", name, id: name, checked: impact[name] === true }), label(name));
  const choice = (name, codes) => select(name, options(codes), { value: impact[name] });
  const form = keyed(h("form", { class: "card", id: "classify-form", onsubmit: submit },
    h("h2", {}, t("event.classify")),
    h("div", { class: "row" }, field(t("f.category"), category), field(t("f.subcategory"), subcategory)),
    h("fieldset", {}, h("legend", {}, t("event.impact")),
      h("div", { class: "row" },
        field(label("scope"), choice("scope", SCOPES)),
        field(label("system_outage"), choice("system_outage", OUTAGES)),
        field(label("safety"), choice("safety", SAFETY))),
      h("div", { class: "row" },
        field(label("departments_needed"), number("departments_needed", 1)),
        field(label("customers_affected"), number("customers_affected", 0)),
        field(label("financial_loss"), number("financial_loss", 0))),
      h("div", { class: "row" }, flag("reputation_risk"), flag("key_account"))),
    h("div", { class: "row" },
      field(t("event.severityOverride"), select("severity", options(SEVERITIES), { blank: "—" })),
      field(t("event.overrideReason"), h("input", { name: "severity_reason", id: "severity_reason", maxlength: 2000 }))),
    h("button", { type: "submit", class: "primary", id: "classify-submit" }, t("event.classify")),
    h("div", { class: "message" })));
  return form;

  function submit(event) {
    event.preventDefault();
    const d = new FormData(form);
    const body = {
      category: d.get("category"),
      subcategory: d.get("subcategory"),
      impact: {
        scope: d.get("scope"),
        system_outage: d.get("system_outage"),
        safety: d.get("safety"),
        departments_needed: Number(d.get("departments_needed")),
        customers_affected: Number(d.get("customers_affected")),
        financial_loss: Number(d.get("financial_loss")),
        reputation_risk: d.get("reputation_risk") === "on",
        key_account: d.get("key_account") === "on",
      },
    };
    if (d.get("severity")) {
      body.severity_override = { severity: d.get("severity"), reason: d.get("severity_reason").trim() || null };
    }
    send(page, form, "classification", body);
  }
}

// The event shows `financial_loss` as a decimal string; requests take it as a JSON number.
function facts(impact) {
  if (!impact) return {};
  return { ...impact, financial_loss: Number(impact.financial_loss ?? 0) };
}

async function proposal(e) {
  if (!e.category) return null;
  try {
    const { data } = await api("POST", "/v1/policy/evaluate", {
      body: {
        category: e.category, subcategory: e.subcategory, urgent: e.urgent,
        impact: facts(e.impact), involved_departments: e.involved_departments,
      },
    });
    return data.routing;
  } catch {
    return null; // the policy decides at assignment all the same
  }
}

async function assignForm(page) {
  const [depts, routed] = await Promise.all([departments(), proposal(page.event)]);
  const policyText = routed ? `${t("event.byPolicy")}: ${routed.lead_department}` : t("event.byPolicy");
  const lead = select("lead_department", departmentOptions(depts), { blank: policyText, value: page.event.lead_department });
  const assignee = h("select", { name: "assignee_id", id: "assignee_id" });
  const reason = h("input", { name: "override_reason", id: "override_reason", maxlength: 2000 });
  const people = async () => {
    const code = lead.value || routed?.lead_department;
    const users = code ? (await api("GET", "/v1/users", { query: { department: code } })).data : [];
    assignee.replaceChildren(h("option", { value: "" }, t("event.nobody")),
      ...users.filter((u) => u.active && !u.service_account).map((u) => h("option", { value: u.id, selected: u.id === page.event.assignee_id }, `${u.name} (${u.roles.map(label).join(", ")})`)));
  };
  lead.addEventListener("change", () => people().catch(() => {}));
  await people().catch(() => {});
  const form = keyed(h("form", { class: "card", id: "assign-form", onsubmit: submit },
    h("h2", {}, t("event.assign")),
    h("div", { class: "row" }, field(t("f.lead"), lead), field(t("f.assignee"), assignee)),
    field(t("f.cooperating"), checks("cooperating", departmentOptions(depts), page.event.lead_department ? page.event.cooperating_departments : routed?.cooperating_departments ?? [])),
    field(t("event.override"), reason),
    h("button", { type: "submit", class: "primary", id: "assign-submit" }, t("event.assign")),
    h("div", { class: "message" })));
  return form;

  function submit(event) {
    event.preventDefault();
    const body = { cooperating_departments: checked(form, "cooperating") };
    if (lead.value) body.lead_department = lead.value;
    if (assignee.value) body.assignee_id = assignee.value;
    if (reason.value.trim()) body.override_reason = reason.value.trim();
    send(page, form, "assignment", body);
  }
}
