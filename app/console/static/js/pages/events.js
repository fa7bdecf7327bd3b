// The event list (`GET /v1/events`): text search, a status filter, keyset pages.

import { get } from "../api.js";
import { badge, h, mount, problemView, select, when } from "../dom.js";
import { label, t } from "../i18n.js";

const STATUSES = ["reported", "classified", "assigned", "in_progress", "resolved",
  "feedback_given", "reviewed", "closed", "cancelled"];

export async function render(view) {
  const body = h("tbody", {});
  const more = h("button", { type: "button", hidden: true, onclick: () => load(cursor) }, t("events.more"));
  const message = h("div", {});
  let cursor = null;
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); load(null); } },
    h("input", { type: "search", name: "q", id: "events-q", placeholder: t("events.search"), maxlength: 200 }),
    select("status", STATUSES.map((s) => [s, label(s)]), { blank: `${t("events.status")}: ${t("events.any")}`, id: "events-status" }),
    h("button", { type: "submit" }, t("kpis.show")));
  mount(view, h("section", { class: "card" },
    h("h1", {}, t("events.title")), form, message,
    h("table", { id: "events" },
      h("thead", {}, h("tr", {}, [t("c.ref"), t("c.title"), t("c.status"), t("c.severity"), t("c.lead"), t("c.reported")].map((c) => h("th", {}, c)))),
      body),
    more));
  await load(null);

  async function load(from) {
    const data = new FormData(form);
    try {
      const page = (await get("/v1/events", {
        query: { limit: 25, cursor: from, q: data.get("q").trim(), status: data.get("status") },
      })).data;
      if (!from) body.replaceChildren();
      message.replaceChildren();
      body.append(...page.items.map((e) => h("tr", {},
        h("td", {}, h("a", { href: `#/events/${e.id}` }, e.ref)),
        h("td", {}, e.title, e.urgent ? h("span", { class: "badge late" }, t("urgent")) : null),
        h("td", {}, badge(e.status)),
        h("td", {}, e.severity ? badge(e.severity, "severity") : "—"),
        h("td", {}, e.lead_department ?? "—"),
        h("td", {}, when(e.reported_at)))));
      if (!body.children.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("events.empty"))));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      mount(message, problemView(error));
    }
  }
}
