// Sign in: paste an API key, or (when the service has OIDC configured) go to the identity
// provider. The key is checked with `GET /v1/me` before it is kept.

import { ApiError, get } from "../api.js";
import { oidcConfig, setToken, signOut, startOidc } from "../auth.js";
import { field, h, mount, problemView } from "../dom.js";
import { t } from "../i18n.js";
import { forget } from "../session.js";

export async function render(view) {
  const message = h("div", { id: "signin-message" });
  const input = h("input", {
    id: "api-key", name: "api-key", type: "password", autocomplete: "off", required: true,
    placeholder: "cle_…", spellcheck: "false",
  });
  const form = h("form", { id: "signin-form", class: "card narrow", onsubmit: submit },
    h("h1", {}, t("signin.title")),
    field(t("signin.key"), input, t("signin.keyHelp")),
    h("button", { type: "submit", class: "primary" }, t("signin.submit")),
    message);
  mount(view, form);
  input.focus();

  const oidc = await oidcConfig();
  if (oidc) {
    form.append(h("p", { class: "muted or" }, t("signin.or")),
      h("button", { type: "button", id: "oidc-signin", onclick: () => startOidc(oidc).catch((e) => mount(message, problemView(e))) },
        t("signin.oidc")));
  }

  async function submit(event) {
    event.preventDefault();
    forget();
    setToken(input.value.trim());
    try {
      await get("/v1/me");
      if (window.location.hash === "#/queue") window.dispatchEvent(new HashChangeEvent("hashchange"));
      else window.location.hash = "#/queue";
    } catch (error) {
      signOut();
      const shown = error instanceof ApiError && error.status === 401
        ? new ApiError(401, { ...error.problem, title: t("err.signin") }) : error;
      mount(message, problemView(shown));
    }
  }
}
