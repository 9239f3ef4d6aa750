// Live alerts: one EventSource on /alerts/stream while signed in (the token goes in the query:
// EventSource cannot send headers). Each alert shows a banner (an aria-live region, so screen
// readers announce it), plays a short WebAudio beep (no audio file), and is passed to the open
// view so it can update without a reload.

import { api, session } from "./api.js";
import { h, replace } from "./dom.js";
import { formatScore, formatTime, t } from "./i18n.js";

let source = null;
let audio = null;
const listeners = new Set();
export const received = [];

/** Views subscribe to alerts; returns the unsubscribe function. */
export function onAlert(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Browsers start audio only after a user gesture: unlock it on the first click or key. */
export function unlockAudio() {
  const unlock = () => {
    try {
      audio ||= new AudioContext();
      if (audio.state === "suspended") audio.resume();
    } catch {
      audio = null;
    }
  };
  document.addEventListener("pointerdown", unlock, { once: true });
  document.addEventListener("keydown", unlock, { once: true });
}

export function beep() {
  const banner = document.getElementById("alert-banner");
  banner.dataset.beeps = String(Number(banner.dataset.beeps || 0) + 1);
  if (localStorage.getItem("reunite.mute") === "1") return;
  try {
    audio ||= new AudioContext();
    const now = audio.currentTime;
    for (const [start, freq] of [[0, 880], [0.25, 1175]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, now + start);
      gain.gain.exponentialRampToValueAtTime(0.3, now + start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + start + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + start);
      osc.stop(now + start + 0.22);
    }
  } catch {
    // No audio device: the banner is the cue.
  }
}

let shown = null;

/** Draw the banner again in the current language (after a language switch). */
export function redrawBanner() {
  const banner = document.getElementById("alert-banner");
  if (shown && !banner.hidden) showBanner(shown);
}

function showBanner(alert) {
  shown = alert;
  const banner = document.getElementById("alert-banner");
  const text = t("alert.banner", {
    alias: alert.case_alias,
    camera: alert.sighting.camera_name,
    time: formatTime(alert.sighting.start_time),
    score: formatScore(alert.score),
  });
  replace(
    banner,
    h("span", { class: "alert-icon", "aria-hidden": "true" }, "●"),
    h("a", { href: `#/cases/${alert.case_id}`, class: "alert-link", dataset: { alert: alert.id } }, text),
    h("button", {
      type: "button",
      class: "ghost",
      onclick: () => {
        banner.hidden = true;
      },
    }, t("alert.dismiss")),
  );
  banner.hidden = false;
}

export function startAlerts() {
  stopAlerts();
  const s = session();
  if (!s) return;
  const url = `/alerts/stream?access_token=${encodeURIComponent(s.token)}`;
  source = new EventSource(url);
  source.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    received.push(alert);
    showBanner(alert);
    beep();
    for (const fn of listeners) fn(alert);
  });
  source.addEventListener("open", () => {
    document.body.dataset.stream = "open";
  });
  source.addEventListener("error", () => {
    document.body.dataset.stream = "error";
    if (source && source.readyState === EventSource.CLOSED) {
      // Refused (e.g. the token expired): a plain call finds out and signs out on 401.
      api("/cameras").catch(() => {});
    }
  });
}

export function stopAlerts() {
  if (source) source.close();
  source = null;
}

/** All alerts so far (oldest first), paging through GET /alerts. */
export async function allAlerts(caseId) {
  const out = [];
  let after = 0;
  for (let page = 0; page < 20; page += 1) {
    const batch = await api("/alerts", { query: { after, case_id: caseId, limit: 500 } });
    out.push(...batch);
    if (batch.length < 500) break;
    after = batch[batch.length - 1].id;
  }
  return out;
}
