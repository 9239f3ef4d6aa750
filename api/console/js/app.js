// The console's entry point: hash routes (#/login, #/cases, #/cases/new, #/cases/<id>,
// #/audit, #/users), the header, sign-out on 401, and language switching. No build step: the
// browser loads these ES modules as they are.

import { isSupervisor, session, setSession, whenUnauthorized } from "./api.js";
import { redrawBanner, startAlerts, stopAlerts, unlockAudio } from "./alerts.js";
import { h, replace } from "./dom.js";
import { language, loadDictionaries, setLanguage, t } from "./i18n.js";
import { auditView } from "./views/audit.js";
import { casePage } from "./views/casepage.js";
import { casesView } from "./views/cases.js";
import { loginView } from "./views/login.js";
import { newCaseView } from "./views/newcase.js";
import { usersView } from "./views/users.js";

const view = () => document.getElementById("view");
let cleanup = null;
let notice = null;
let generation = 0; // a render that finishes after a newer one began is thrown away

const routes = [
  [/^#\/login$/, () => loginView(notice, signedIn)],
  [/^#\/cases\/new$/, () => newCaseView()],
  [/^#\/cases\/(\d+)$/, (m) => casePage(Number(m[1]))],
  [/^#\/cases$/, () => casesView()],
  [/^#\/audit$/, () => auditView(), true],
  [/^#\/users$/, () => usersView(), true],
];

async function render() {
  const hash = window.location.hash || "#/cases";
  if (!session() && hash !== "#/login") {
    window.location.hash = "#/login";
    return;
  }
  if (cleanup) cleanup();
  cleanup = null;
  const mine = ++generation;
  updateHeader();
  for (const [pattern, make, supervisorOnly] of routes) {
    const match = hash.match(pattern);
    if (!match) continue;
    if (supervisorOnly && !isSupervisor()) {
      replace(view(), h("p", { class: "error", role: "alert" }, t("error.supervisor")));
      return;
    }
    try {
      const result = await make(match);
      if (mine !== generation) {
        if (result.cleanup) result.cleanup();
        return;
      }
      replace(view(), result.el);
      cleanup = result.cleanup || null;
      if (result.focus) result.focus();
      else view().focus({ preventScroll: true });
    } catch (err) {
      if (mine !== generation) return;
      replace(view(), h("p", { class: "error", role: "alert" }, err.message || String(err)));
    }
    markNav(hash);
    return;
  }
  window.location.hash = "#/cases";
}

function markNav(hash) {
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === hash) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function updateHeader() {
  const s = session();
  document.getElementById("nav").hidden = !s;
  document.getElementById("logout").hidden = !s;
  document.getElementById("mute").hidden = !s;
  for (const a of document.querySelectorAll("#nav .supervisor")) a.hidden = !isSupervisor();
  document.getElementById("who").textContent = s
    ? t("nav.who", { user: s.username, role: t(`role.${s.role}`) })
    : "";
  const lang = document.getElementById("lang");
  lang.textContent = language() === "ko" ? "English" : "한국어";
  lang.lang = language() === "ko" ? "en" : "ko";
  lang.setAttribute("aria-label", t("nav.language"));
  const mute = document.getElementById("mute");
  const muted = localStorage.getItem("reunite.mute") === "1";
  mute.textContent = muted ? t("nav.soundOff") : t("nav.soundOn");
  mute.setAttribute("aria-pressed", muted ? "false" : "true");
}

function signedIn(username, token) {
  notice = null;
  setSession({ username, token: token.access_token, role: token.role });
  startAlerts();
  window.location.hash = "#/cases";
}

function signOut(message) {
  stopAlerts();
  setSession(null);
  notice = message || null;
  if (window.location.hash === "#/login") render();
  else window.location.hash = "#/login";
}

async function main() {
  await loadDictionaries();
  whenUnauthorized(() => signOut(t("login.expired")));
  unlockAudio();
  document.getElementById("lang").addEventListener("click", () => {
    setLanguage(language() === "ko" ? "en" : "ko");
    redrawBanner();
    render();
  });
  document.getElementById("logout").addEventListener("click", () => signOut(t("login.signedOut")));
  document.getElementById("mute").addEventListener("click", () => {
    const muted = localStorage.getItem("reunite.mute") === "1";
    localStorage.setItem("reunite.mute", muted ? "0" : "1");
    updateHeader();
  });
  window.addEventListener("hashchange", render);
  if (session()) startAlerts();
  await render();
  document.body.dataset.ready = "1";
}

main();
