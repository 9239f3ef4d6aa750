// Open cases, those with the newest alerts first; updated live as alerts arrive.

import { allAlerts, onAlert } from "../alerts.js";
import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";

/** Cases ordered by their newest alert (cases without alerts after, newest case first). */
export function orderCases(cases, alerts) {
  const latest = new Map();
  const unacknowledged = new Map();
  for (const a of alerts) {
    const prev = latest.get(a.case_id);
    if (!prev || Date.parse(prev.created_at) < Date.parse(a.created_at)) latest.set(a.case_id, a);
    if (!a.acknowledged_at) unacknowledged.set(a.case_id, (unacknowledged.get(a.case_id) || 0) + 1);
  }
  const rows = cases.map((c) => ({ case: c, latest: latest.get(c.id) || null, open: unacknowledged.get(c.id) || 0 }));
  rows.sort((a, b) => {
    const ta = a.latest ? Date.parse(a.latest.created_at) : 0;
    const tb = b.latest ? Date.parse(b.latest.created_at) : 0;
    if (ta !== tb) return tb - ta;
    return Date.parse(b.case.created_at) - Date.parse(a.case.created_at);
  });
  return rows;
}

export async function casesView() {
  const list = h("div", { class: "case-list", "aria-live": "polite" });
  const el = h("section", { "aria-labelledby": "cases-title" },
    h("div", { class: "heading" },
      h("h1", { id: "cases-title" }, t("cases.title")),
      h("a", { class: "button primary", href: "#/cases/new" }, t("cases.new"))),
    list);

  async function load() {
    const [cases, alerts] = await Promise.all([api("/cases", { query: { status: "open" } }), allAlerts()]);
    const rows = orderCases(cases, alerts);
    if (!rows.length) {
      replace(list, h("p", { class: "muted" }, t("cases.none")));
      return;
    }
    replace(list, h("table", { class: "table" },
      h("caption", { class: "sr-only" }, t("cases.caption")),
      h("thead", {}, h("tr", {},
        ["cases.alias", "cases.age", "cases.lastSeen", "cases.latestAlert", "cases.unacknowledged"]
          .map((k) => h("th", { scope: "col" }, t(k))))),
      h("tbody", {}, rows.map((r) => h("tr", { dataset: { case: r.case.id }, class: r.open ? "has-alert" : "" },
        h("th", { scope: "row" }, h("a", { href: `#/cases/${r.case.id}` }, r.case.alias)),
        h("td", {}, r.case.age_group ? t(`age.${r.case.age_group}`) : "—"),
        h("td", {}, [r.case.last_seen_time && formatTime(r.case.last_seen_time), r.case.last_seen_place].filter(Boolean).join(" · ") || "—"),
        h("td", {}, r.latest ? `${formatTime(r.latest.created_at)} · ${r.latest.sighting.camera_name}` : "—"),
        h("td", {}, r.open ? h("span", { class: "badge alert" }, String(r.open)) : "0"))))));
  }

  await load();
  const off = onAlert(() => load().catch(() => {}));
  return { el, cleanup: off };
}
