// The intake form (`POST /v1/events`, R3.1). One Idempotency-Key per filled-in form: a click
// repeated after a lost answer replays the first answer instead of reporting the event twice.

import { api, newIdempotencyKey } from "../api.js";
import { checked, checks, field, h, mount, problemView, select } from "../dom.js";
import { label, t } from "../i18n.js";
import { departmentOptions, departments } from "../session.js";

const CHANNELS = ["hotline", "email", "chat_group", "feedback_platform", "web", "api", "walk_in", "other"];

export async function render(view) {
  const depts = await departments();
  let key = newIdempotencyKey();
  const message = h("div", { id: "report-message" });
  const form = h("form", { id: "report-form", class: "card", oninput: () => { key = newIdempotencyKey(); }, onsubmit: submit },
    h("h1", {}, t("report.title")),
    h("p", { class: "muted" }, t("report.help")),
    field(t("f.title"), h("input", { name: "title", id: "title", required: true, maxlength: 200 })),
    field(t("f.description"), h("textarea", { name: "description", id: "description", required: true, rows: 5, maxlength: 20000 })),
    h("div", { class: "row" },
      field(t("f.channel"), select("channel", CHANNELS.map((c) => [c, label(c)]), { value: "web" })),
      field(t("f.occurred"), h("input", { type: "datetime-local", name: "occurred_at", id: "occurred_at" })),
      h("label", { class: "check big" }, h("input", { type: "checkbox", name: "urgent", id: "urgent" }), t("f.urgent"))),
    h("fieldset", {},
      h("legend", {}, t("f.reporter")),
      h("div", { class: "row" },
        field(t("f.reporterName"), h("input", { name: "reporter_name", id: "reporter_name", maxlength: 200 }), t("f.reporterHelp")),
        field(t("f.email"), h("input", { type: "email", name: "reporter_email", id: "reporter_email" })),
        field(t("f.phone"), h("input", { type: "tel", name: "reporter_phone", id: "reporter_phone" })))),
    h("fieldset", {}, h("legend", {}, t("f.involved")), checks("involved", departmentOptions(depts))),
    h("button", { type: "submit", class: "primary", id: "report-submit" }, t("report.submit")),
    message);
  mount(view, form);

  async function submit(event) {
    event.preventDefault();
    const data = new FormData(form);
    const reporter = Object.fromEntries(Object.entries({
      name: data.get("reporter_name").trim(),
      email: data.get("reporter_email").trim(),
      phone: data.get("reporter_phone").trim(),
    }).filter(([, value]) => value));
    const occurred = data.get("occurred_at");
    const body = {
      title: data.get("title").trim(),
      description: data.get("description").trim(),
      channel: data.get("channel"),
      urgent: data.get("urgent") === "on",
      involved_departments: checked(form, "involved"),
      ...(occurred ? { occurred_at: new Date(occurred).toISOString() } : {}),
      // Without a name the caller reports for themselves (product.md section 2).
      ...(reporter.name ? { reporter } : {}),
    };
    const button = form.querySelector("#report-submit");
    button.disabled = true;
    try {
      const { data: created } = await api("POST", "/v1/events", { body, idempotencyKey: key });
      window.location.hash = `#/events/${created.id}`;
    } catch (error) {
      mount(message, problemView(error));
    } finally {
      button.disabled = false;
    }
  }
}
