// A case: its details and photos, candidate sightings (filters, grid, keyboard review), the
// sighting view (crops and frame), confirmed sightings on a timeline and as a route on the plan,
// and its alerts, all updated live when an alert for the case arrives.

import { allAlerts, onAlert, received } from "../alerts.js";
import { api, ApiError, loadImage } from "../api.js";
import { field, h, isoToLocalInput, localInputToIso, replace } from "../dom.js";
import { formatScore, formatTime, language, t } from "../i18n.js";
import { outlined } from "../photos.js";
import { cameraPlan } from "../plan.js";

const SHORTCUTS = [["j", "keys.next"], ["k", "keys.previous"], ["c", "keys.confirm"], ["r", "keys.reject"],
  ["o", "keys.open"], ["u", "keys.refresh"], ["?", "keys.help"], ["Esc", "keys.close"]];

export async function casePage(caseId) {
  const [kase, cameras] = await Promise.all([api(`/cases/${caseId}`), api("/cameras")]);
  const urls = new Set();
  const state = { results: [], selected: 0, decisions: null, alerts: [], basis: "photos", searched: null, warnings: [] };

  // -- case header -----------------------------------------------------------------------------
  const photosEl = h("div", { class: "case-photos" });
  for (const p of kase.photos) {
    const img = h("img", { alt: t("case.photoAlt", { kind: t(`photoKind.${p.kind}`) }), class: "case-photo" });
    photosEl.append(img);
    loadImage(img, p.crop_url, urls).catch(() => {});
  }
  const facts = [
    ["case.status", t(`status.${kase.status}`)],
    ["case.age", kase.age_group ? t(`age.${kase.age_group}`) : "—"],
    ["case.lastSeen", [kase.last_seen_time && formatTime(kase.last_seen_time), kase.last_seen_place].filter(Boolean).join(" · ") || "—"],
    ["case.description", kase.description || "—"],
    kase.clothing_notes ? ["case.notes", kase.clothing_notes] : null,
  ].filter(Boolean);
  const header = h("section", { class: "case-head card", "aria-labelledby": "case-title" },
    h("h1", { id: "case-title" }, kase.alias, " ", h("span", { class: "muted" }, `#${kase.id}`)),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
    photosEl);

  // -- filters -----------------------------------------------------------------------------------
  const since = h("input", { type: "datetime-local", name: "since", value: isoToLocalInput(kase.last_seen_time) });
  const until = h("input", { type: "datetime-local", name: "until" });
  const k = h("select", { name: "k" }, [20, 50, 100].map((n) => h("option", { value: n }, String(n))));
  const cameraBoxes = cameras.map((c) => h("input", { type: "checkbox", name: "camera", value: c.id, id: `cam-${c.id}` }));
  const by = h("select", { name: "by" }, ["auto", "photos", "description", "both"].map((b) => h("option", { value: b }, t(`by.${b}`))));
  const filters = h("form", { class: "filters card", "aria-label": t("filters.title") },
    h("h2", {}, t("filters.title")),
    h("div", { class: "row" }, field(t("filters.since"), since), field(t("filters.until"), until), field(t("filters.k"), k),
      field(t("filters.by"), by, t("filters.byHint"))),
    h("fieldset", { class: "camera-filter" }, h("legend", {}, t("filters.cameras")),
      cameraBoxes.map((box, i) => h("label", { class: "check", for: box.id }, box, cameras[i].name))),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, t("filters.apply")),
      h("button", { type: "reset", class: "ghost" }, t("filters.reset"))));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    loadResults();
  });
  filters.addEventListener("reset", () => setTimeout(() => {
    since.value = isoToLocalInput(kase.last_seen_time);
    loadResults();
  }));

  // -- results -----------------------------------------------------------------------------------
  const resultsStatus = h("p", { class: "muted", "aria-live": "polite" });
  const grid = h("ol", { class: "results", "aria-label": t("results.title") });
  const help = h("div", { class: "help card", id: "shortcut-help", hidden: true },
    h("h3", {}, t("keys.title")),
    h("dl", { class: "keys" }, SHORTCUTS.map(([key, label]) => [h("dt", {}, h("kbd", {}, key)), h("dd", {}, t(label))])));
  const helpButton = h("button", { type: "button", class: "ghost", "aria-expanded": "false", "aria-controls": "shortcut-help" }, t("keys.show"));
  const toggleHelp = () => {
    help.hidden = !help.hidden;
    helpButton.setAttribute("aria-expanded", String(!help.hidden));
  };
  helpButton.addEventListener("click", toggleHelp);
  const refresh = h("button", { type: "button", class: "ghost", onclick: () => loadResults() }, t("results.refresh"));
  const results = h("section", { class: "results-box", "aria-labelledby": "results-title" },
    h("div", { class: "heading" }, h("h2", { id: "results-title" }, t("results.title")), h("div", {}, refresh, helpButton)),
    help, resultsStatus, grid);

  function card(r, i) {
    const img = h("img", { alt: t("results.thumbAlt", { camera: r.camera_name }), loading: "lazy" });
    if (r.thumbnail_url) loadImage(img, r.thumbnail_url, urls).catch(() => {});
    const selected = i === state.selected;
    const badge = r.decision ? h("span", { class: `badge ${r.decision}` }, t(`decision.${r.decision}`)) : null;
    const isNew = received.some((a) => a.case_id === caseId && a.sighting.sighting_id === r.sighting_id) ? h("span", { class: "badge alert" }, t("results.new")) : null;
    return h("li", {
      class: `result${selected ? " selected" : ""}${r.decision ? ` ${r.decision}` : ""}`,
      dataset: { sighting: r.sighting_id, camera: r.camera_id, decision: r.decision || "" },
    },
    h("article", {
      tabindex: selected ? 0 : -1,
      "aria-current": selected ? "true" : null,
      "aria-label": t("results.cardLabel", { rank: i + 1, camera: r.camera_name, time: formatTime(r.start_time), score: formatScore(r.score, state.basis) }),
      onfocus: () => select(i, false),
    },
    h("button", { type: "button", class: "thumb", onclick: () => openSighting(r), "aria-label": t("results.open") }, img),
    h("div", { class: "meta" },
      h("span", { class: "rank" }, `${i + 1}`),
      h("span", { class: "camera" }, r.camera_name),
      h("span", { class: "time" }, formatTime(r.start_time)),
      h("span", { class: "score" }, t(state.basis === "photos" ? "results.score" : "results.scoreFused", { score: formatScore(r.score, state.basis) })),
      badge, isNew),
    h("div", { class: "decide" },
      h("button", { type: "button", class: "confirm", onclick: () => decide(r, "confirmed"), disabled: r.decision === "confirmed" }, t("results.confirm")),
      h("button", { type: "button", class: "reject", onclick: () => decide(r, "rejected"), disabled: r.decision === "rejected" }, t("results.reject")))));
  }

  function drawResults() {
    replace(grid, state.results.map(card));
    const summary = state.searched ? (language() === "ko" ? state.searched.summary_ko : state.searched.summary) : "";
    replace(resultsStatus,
      state.results.length ? t("results.count", { n: state.results.length }) : t("results.none"), " ",
      h("span", { class: "basis", dataset: { basis: state.basis } }, t(`basis.${state.basis}`)),
      summary ? h("span", { class: "searched" }, ` · ${t("results.searchedAs", { summary })}`) : null,
      state.warnings.map((w) => h("span", { class: "warning" }, ` · ${w}`)));
  }

  function select(i, focus = true) {
    if (!state.results.length) return;
    const next = Math.max(0, Math.min(state.results.length - 1, i));
    const items = grid.querySelectorAll("li.result");
    items[state.selected]?.classList.remove("selected");
    const old = items[state.selected]?.querySelector("article");
    if (old) {
      old.tabIndex = -1;
      old.removeAttribute("aria-current");
    }
    state.selected = next;
    items[next]?.classList.add("selected");
    const article = items[next]?.querySelector("article");
    if (article) {
      article.tabIndex = 0;
      article.setAttribute("aria-current", "true");
      if (focus) article.focus();
    }
  }

  async function loadResults() {
    const query = {
      since: localInputToIso(since.value),
      until: localInputToIso(until.value),
      camera: cameraBoxes.filter((b) => b.checked).map((b) => b.value),
      k: k.value,
      by: by.value,
    };
    resultsStatus.textContent = t("results.loading");
    try {
      const data = await api(`/cases/${caseId}/matches`, { query });
      state.results = data.results;
      state.basis = data.basis || "photos";
      state.searched = data.description || null;
      state.warnings = data.warnings || [];
      state.selected = Math.min(state.selected, Math.max(0, state.results.length - 1));
      drawResults();
      await loadDecisions();
    } catch (err) {
      resultsStatus.textContent = err.message;
    }
  }

  async function decide(r, decision) {
    try {
      await api(`/cases/${caseId}/matches/${r.sighting_id}`, { method: "PUT", json: { decision } });
      r.decision = decision;
      const hadFocus = grid.contains(document.activeElement);
      drawResults();
      select(state.results.indexOf(r), hadFocus);
      announce(t(`decision.done.${decision}`, { camera: r.camera_name, time: formatTime(r.start_time) }));
      await loadDecisions();
    } catch (err) {
      announce(err.message);
    }
  }

  // -- confirmed sightings: timeline and route ---------------------------------------------------
  const planBox = h("div", { class: "plan-box" });
  const timeline = h("ol", { class: "timeline", "aria-label": t("route.timeline") });
  const route = h("section", { class: "route-box card", "aria-labelledby": "route-title" },
    h("h2", { id: "route-title" }, t("route.title")), planBox, h("h3", {}, t("route.timeline")), timeline);

  async function loadDecisions() {
    let confirmed;
    try {
      const rows = await api(`/cases/${caseId}/decisions`);
      confirmed = rows.filter((d) => d.decision === "confirmed").map((d) => d.sighting || d);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      // Until GET /cases/{id}/decisions exists: the confirmed sightings among the results.
      confirmed = state.results.filter((r) => r.decision === "confirmed");
    }
    confirmed.sort((a, b) => Date.parse(a.start_time) - Date.parse(b.start_time));
    state.decisions = confirmed;
    replace(planBox, cameraPlan(cameras, { route: confirmed, label: t("route.planLabel") }));
    if (!confirmed.length) {
      replace(timeline, h("li", { class: "muted" }, t("route.none")));
      return;
    }
    const first = Date.parse(confirmed[0].start_time);
    const span = Math.max(Date.parse(confirmed[confirmed.length - 1].start_time) - first, 1);
    replace(timeline, confirmed.map((s, i) => h("li", {
      class: i === confirmed.length - 1 ? "newest" : "",
      dataset: { sighting: s.sighting_id },
      style: `--at: ${((Date.parse(s.start_time) - first) / span).toFixed(3)}`,
    },
    h("span", { class: "stop" }, String(i + 1)),
    h("time", { datetime: s.start_time }, formatTime(s.start_time)),
    h("span", {}, s.camera_name))));
  }

  // -- alerts for this case -----------------------------------------------------------------------
  const alertList = h("ul", { class: "alert-list", "aria-live": "polite" });
  const alertsBox = h("section", { class: "alerts-box card", "aria-labelledby": "alerts-title" },
    h("h2", { id: "alerts-title" }, t("alerts.title")), alertList);

  async function loadAlerts() {
    state.alerts = (await allAlerts(caseId)).reverse();
    if (!state.alerts.length) {
      replace(alertList, h("li", { class: "muted" }, t("alerts.none")));
      return;
    }
    replace(alertList, state.alerts.map((a) => h("li", { dataset: { alert: a.id }, class: a.acknowledged_at ? "" : "unacknowledged" },
      h("span", {}, t("alerts.item", { camera: a.sighting.camera_name, time: formatTime(a.sighting.start_time), score: formatScore(a.score) })),
      h("button", { type: "button", class: "ghost", onclick: () => openSighting(a.sighting) }, t("results.open")),
      a.acknowledged_at ? h("span", { class: "muted" }, t("alerts.acknowledged"))
        : h("button", {
          type: "button",
          class: "ghost",
          onclick: async () => {
            await api(`/alerts/${a.id}/acknowledge`, { method: "POST" });
            loadAlerts();
          },
        }, t("alerts.acknowledge")))));
  }

  // -- the sighting view -------------------------------------------------------------------------
  const dialog = h("dialog", { class: "sighting", "aria-labelledby": "sighting-title" });

  async function openSighting(r) {
    const detail = await api(`/sightings/${r.sighting_id}`);
    const crops = h("div", { class: "crops" });
    const frameBox = h("figure", { class: "frame", hidden: true });
    const decideIn = (decision) => async () => {
      const row = state.results.find((x) => x.sighting_id === r.sighting_id) || r;
      await decide(row, decision);
      dialog.close();
    };
    replace(dialog,
      h("div", { class: "heading" },
        h("h2", { id: "sighting-title" }, t("sighting.title", { camera: detail.camera_name })),
        h("button", { type: "button", class: "ghost", onclick: () => dialog.close(), "aria-label": t("common.close") }, "×")),
      h("p", {}, t("sighting.when", { start: formatTime(detail.start_time), end: formatTime(detail.end_time), frames: detail.frames })),
      frameBox,
      h("h3", {}, t("sighting.crops")),
      crops,
      h("div", { class: "decide" },
        h("button", { type: "button", class: "confirm", onclick: decideIn("confirmed") }, t("results.confirm")),
        h("button", { type: "button", class: "reject", onclick: decideIn("rejected") }, t("results.reject"))));
    for (const c of detail.crops) {
      const img = h("img", { alt: t("sighting.cropAlt", { time: formatTime(c.time) }) });
      crops.append(h("figure", {}, img, h("figcaption", {}, formatTime(c.time))));
      loadImage(img, c.url, urls).catch(() => {});
    }
    dialog.showModal();
    try {
      const response = await api(`/sightings/${r.sighting_id}/frame`, { raw: true, headers: { Accept: "image/*" } });
      const url = URL.createObjectURL(await response.blob());
      urls.add(url);
      replace(frameBox, outlined(url, detail.box, null, null, t("sighting.frameAlt")), h("figcaption", {}, t("sighting.frame")));
      frameBox.hidden = false;
    } catch {
      frameBox.hidden = true; // 404: an older sighting whose frame was not kept
    }
  }

  // -- keyboard, live updates ----------------------------------------------------------------------
  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || dialog.open) return;
    if (e.target.closest && e.target.closest("input, textarea, select")) return;
    const current = state.results[state.selected];
    const actions = {
      j: () => select(state.selected + 1),
      k: () => select(state.selected - 1),
      c: () => current && decide(current, "confirmed"),
      r: () => current && decide(current, "rejected"),
      o: () => current && openSighting(current),
      u: () => loadResults(),
      "?": toggleHelp,
    };
    if (e.key === "Enter" && e.target.matches && e.target.matches("li.result > article")) actions.Enter = actions.o;
    const action = actions[e.key];
    if (action) {
      e.preventDefault();
      action();
    }
  }

  function announce(text) {
    document.getElementById("status").textContent = text;
  }

  await Promise.all([loadResults(), loadAlerts()]);
  document.addEventListener("keydown", onKey);
  const off = onAlert((alert) => {
    if (alert.case_id !== caseId) return;
    loadResults();
    loadAlerts().catch(() => {});
  });
  const el = h("div", { class: "case-page" },
    header,
    h("div", { class: "case-grid" },
      h("div", { class: "case-main" }, filters, results),
      h("aside", { class: "case-side" }, route, alertsBox)),
    dialog);
  return {
    el,
    cleanup: () => {
      document.removeEventListener("keydown", onKey);
      off();
      for (const url of urls) URL.revokeObjectURL(url);
    },
  };
}
