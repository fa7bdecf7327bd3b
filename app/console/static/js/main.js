// The console's shell: sign-in state, the header, and a hash router (#/queue, #/report,
// #/events, #/events/<id>, #/kpis). Every page is a module with `render(view, params)`.

import { whenUnauthorized } from "./api.js";
import { finishOidc, signOut, token } from "./auth.js";
import { h, mount, problemView } from "./dom.js";
import { currentLang, label, setLang, t } from "./i18n.js";
import { forget, me } from "./session.js";
import * as eventPage from "./pages/event.js";
import * as events from "./pages/events.js";
import * as intake from "./pages/intake.js";
import * as kpis from "./pages/kpis.js";
import * as queue from "./pages/queue.js";
import * as signin from "./pages/signin.js";

const ROUTES = [
  [/^#\/queue$/, queue],
  [/^#\/report$/, intake],
  [/^#\/events$/, events],
  [/^#\/events\/([^/]+)$/, eventPage],
  [/^#\/kpis$/, kpis],
];

const view = document.getElementById("view");

function translateStatic() {
  document.documentElement.lang = currentLang() === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.getElementById("lang").textContent = currentLang() === "zh" ? "English" : "中文";
  document.title = t("brand");
}

async function header() {
  const signedIn = Boolean(token());
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("sign-out").hidden = !signedIn;
  const user = signedIn ? (await me()).user : null;
  // Replaced whole after the await: two routes running at once leave one name, not two.
  document.getElementById("who-name").replaceChildren(...(user ? [
    h("strong", {}, user.name), " ",
    h("span", { class: "muted" }, [user.department, ...user.roles.map(label)].filter(Boolean).join(" · ")),
  ] : []));
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", window.location.hash.startsWith(link.getAttribute("href")));
  }
}

async function route() {
  translateStatic();
  if (!token()) {
    await header();
    await signin.render(view);
    return;
  }
  const hash = window.location.hash || "#/queue";
  const found = ROUTES.map(([pattern, page]) => [hash.match(pattern), page]).find(([m]) => m);
  if (!found) {
    window.location.hash = "#/queue";
    return;
  }
  const [match, page] = found;
  try {
    await header();
    await page.render(view, ...match.slice(1).map(decodeURIComponent));
  } catch (error) {
    mount(view, problemView(error));
  }
}

whenUnauthorized(() => {
  signOut();
  forget();
  route();
});

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  forget();
  window.location.hash = "#/queue";
  route();
});

document.getElementById("lang").addEventListener("click", () => {
  setLang(currentLang() === "zh" ? "en" : "zh");
  route();
});

window.addEventListener("hashchange", route);

try {
  await finishOidc();
} catch (error) {
  mount(view, problemView(error));
}
route();
