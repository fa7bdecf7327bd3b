// KPIs (`GET /v1/kpis`, R5.4) for a period, per department, assignee or category, drawn as
// plain SVG bar charts: events by state, on-time rate, mean satisfaction; and the totals.

import { get } from "../api.js";
import { barChart, legend } from "../charts.js";
import { field, h, mount, problemView, select } from "../dom.js";
import { label, t } from "../i18n.js";

const DAY = 86_400_000;
const day = (date) => date.toISOString().slice(0, 10);
const pct = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 100)} %`);

export async function render(view) {
  const now = new Date();
  const out = h("div", { id: "kpi-out" });
  const form = h("form", { class: "filters", id: "kpi-form", onsubmit: (e) => { e.preventDefault(); load(); } },
    field(t("kpis.from"), h("input", { type: "date", name: "from", id: "kpi-from", value: day(new Date(now - 30 * DAY)), required: true })),
    field(t("kpis.to"), h("input", { type: "date", name: "to", id: "kpi-to", value: day(new Date(+now + DAY)), required: true })),
    field(t("kpis.groupBy"), select("group_by", ["department", "assignee", "category"].map((g) => [g, label(g)]), { id: "kpi-group" })),
    h("button", { type: "submit" }, t("kpis.show")));
  mount(view, h("section", { class: "card" }, h("h1", {}, t("kpis.title")), form), out);
  await load();

  async function load() {
    const d = new FormData(form);
    try {
      const { data } = await get("/v1/kpis", {
        query: {
          from: new Date(`${d.get("from")}T00:00:00`).toISOString(),
          to: new Date(`${d.get("to")}T00:00:00`).toISOString(),
          group_by: d.get("group_by"),
        },
      });
      mount(out, report(data));
    } catch (error) {
      mount(out, error.status === 403 ? problemView({ problem: { ...error.problem, title: t("err.forbidden") } }) : problemView(error));
    }
  }
}

function name(row, groupBy) {
  if (row.key === null) return "—";
  return groupBy === "assignee" ? row.key.slice(0, 8) : groupBy === "category" ? label(row.key) : row.key;
}

function report(data) {
  const rows = data.groups;
  const tot = data.totals;
  const cards = [
    [t("c.events"), tot.events], [t("c.open"), tot.open], [t("c.resolved"), tot.resolved],
    [t("kpis.onTime"), pct(tot.on_time_rate)], [t("c.recurrence"), pct(tot.recurrence_rate)],
    [t("c.meanHours"), tot.mean_resolution_hours?.toFixed(1) ?? "—"],
    [t("c.satisfaction"), tot.satisfaction.mean_score?.toFixed(2) ?? "—"],
  ];
  if (!rows.length) return h("section", { class: "card" }, h("p", { class: "muted" }, t("kpis.none")));
  const label_ = (r) => name(r, data.group_by);
  return [
    h("section", { class: "card" },
      h("h2", {}, t("kpis.totals"), data.department_scope ? h("span", { class: "muted small" }, ` · ${t("kpis.scope")}: ${data.department_scope}`) : null),
      h("div", { class: "tiles", id: "kpi-totals" }, cards.map(([k, v]) => h("div", { class: "tile" }, h("span", { class: "muted small" }, k), h("strong", {}, String(v)))))),
    h("div", { class: "columns" },
      h("section", { class: "card" }, h("h2", {}, t("kpis.events")),
        legend([{ cls: "open", text: t("c.open") }, { cls: "closed", text: t("c.closed") }, { cls: "cancelled", text: t("c.cancelled") }]),
        barChart({
          id: "chart-events", title: t("kpis.events"),
          max: Math.max(...rows.map((r) => r.events), 1),
          rows: rows.map((r) => ({
            label: label_(r), text: String(r.events),
            segments: [
              { value: r.open, cls: "open", title: t("c.open") },
              { value: r.closed, cls: "closed", title: t("c.closed") },
              { value: r.cancelled, cls: "cancelled", title: t("c.cancelled") },
            ],
          })),
        })),
      h("section", { class: "card" }, h("h2", {}, t("kpis.onTime")),
        barChart({
          id: "chart-on-time", title: t("kpis.onTime"), max: 1, tick: pct,
          rows: rows.map((r) => ({
            label: label_(r),
            text: r.resolved ? `${pct(r.on_time_rate)} (${r.resolved_on_time}/${r.resolved})` : "—",
            segments: [{ value: r.on_time_rate ?? 0, cls: "ok", title: t("c.onTime") }],
          })),
        }),
        h("h2", {}, t("kpis.satisfaction")),
        barChart({
          id: "chart-satisfaction", title: t("kpis.satisfaction"), max: 5,
          rows: rows.map((r) => ({
            label: label_(r),
            text: r.satisfaction.mean_score === null ? "—" : `${r.satisfaction.mean_score.toFixed(2)} (${r.satisfaction.responses})`,
            segments: [{ value: r.satisfaction.mean_score ?? 0, cls: "score", title: t("c.satisfaction") }],
          })),
        }))),
  ];
}
