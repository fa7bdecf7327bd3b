// A tiny DOM builder. Elements are made with the DOM API (no innerHTML), so text from the API is
// never parsed as markup, and no inline handler or style attribute is needed (strict CSP).

import { currentLang, label, t } from "./i18n.js";

const PROPS = new Set(["value", "checked", "selected", "disabled", "hidden", "multiple", "required"]);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (PROPS.has(name)) {
      el[name] = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function mount(target, ...children) {
  target.replaceChildren();
  append(target, children);
}

export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return date.toLocaleString(currentLang() === "zh" ? "zh-CN" : "en-GB", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
}

export function badge(code, kind = "status") {
  return h("span", { class: `badge ${kind} ${kind}-${code ?? "none"}` }, label(code));
}

export function select(name, options, { value, blank, required, id } = {}) {
  return h(
    "select",
    { name, id: id ?? name, required },
    blank !== undefined ? h("option", { value: "" }, blank) : null,
    options.map(([code, text]) => h("option", { value: code, selected: code === value }, text)),
  );
}

export function field(text, control, help) {
  return h("label", { class: "field" }, h("span", { class: "label" }, text), control,
    help ? h("small", { class: "help" }, help) : null);
}

export function checks(name, options, chosen = []) {
  return h("div", { class: "checks", id: name },
    options.map(([code, text]) => h("label", { class: "check" },
      h("input", { type: "checkbox", name, value: code, checked: chosen.includes(code) }), text)));
}

export function checked(form, name) {
  return [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
}

export function loading() {
  return h("p", { class: "muted" }, t("loading"));
}

/** An RFC 9457 problem as the user should read it: title, detail, and what is missing. */
export function problemView(error) {
  const p = error.problem ?? { title: String(error), detail: "" };
  const lists = [
    ["missing", p.missing],
    ["allowed", p.allowed],
    ["errors", (p.errors ?? []).map((e) => `${e.field}: ${e.message}`)],
  ].filter(([, items]) => Array.isArray(items) && items.length);
  return h("div", { class: "alert", role: "alert", "data-problem": p.type ?? "" },
    h("strong", {}, `${p.status ?? ""} ${p.title ?? ""}`.trim()),
    p.detail ? h("p", {}, p.detail) : null,
    lists.map(([name, items]) => h("p", {}, h("span", { class: "muted" }, `${name}: `),
      items.map((i) => h("code", { class: "chip" }, i)))));
}
