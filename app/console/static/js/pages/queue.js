// The caller's queue (`GET /v1/me/queue`): what they must do now, soonest due first.

import { get } from "../api.js";
import { badge, h, loading, mount, when } from "../dom.js";
import { t } from "../i18n.js";

export async function render(view) {
  mount(view, loading());
  const { data } = await get("/v1/me/queue");
  const rows = data.items.map((item) => h("tr", { class: item.breached ? "breached" : "" },
    h("td", {}, h("a", { href: `#/events/${item.event_id}` }, item.ref)),
    h("td", {}, item.title),
    h("td", {}, badge(item.waiting_for, "action")),
    h("td", {}, when(item.due_at), item.breached ? h("span", { class: "badge late" }, t("overdue")) : null)));
  mount(view,
    h("section", { class: "card" },
      h("div", { class: "head" }, h("h1", {}, t("queue.title")),
        h("button", { type: "button", onclick: () => render(view) }, t("queue.refresh"))),
      rows.length
        ? h("table", { id: "queue" },
          h("thead", {}, h("tr", {}, [t("c.ref"), t("c.title"), t("c.waiting"), t("c.due")].map((c) => h("th", {}, c)))),
          h("tbody", {}, rows))
        : h("p", { class: "muted", id: "queue-empty" }, t("queue.empty"))));
}
