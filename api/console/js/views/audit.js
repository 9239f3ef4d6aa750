// Supervisor: the audit log (newest first) with filters, paging, and the hash-chain check.

import { api } from "../api.js";
import { field, h, localInputToIso, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";

const ACTIONS = ["login", "case_create", "case_list", "case_view", "case_update", "case_close", "case_reopen",
  "photo_add", "photo_view", "matches_view", "match_decision", "search", "sighting_view", "crop_view",
  "alerts_view", "alerts_stream", "alert_acknowledge", "user_list", "user_add", "user_change",
  "audit_view", "audit_verify"];

export async function auditView() {
  const username = h("input", { name: "username", autocomplete: "off" });
  const action = h("select", { name: "action" }, h("option", { value: "" }, t("audit.anyAction")),
    ACTIONS.map((a) => h("option", { value: a }, a)));
  const caseId = h("input", { name: "case_id", type: "number", min: 1, inputmode: "numeric" });
  const since = h("input", { name: "since", type: "datetime-local" });
  const until = h("input", { name: "until", type: "datetime-local" });
  const tbody = h("tbody");
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const verifyOut = h("p", { "aria-live": "polite" });
  const more = h("button", { type: "button", class: "ghost", hidden: true }, t("audit.older"));
  let oldest = null;

  const form = h("form", { class: "filters card", "aria-label": t("audit.filters") },
    h("div", { class: "row" },
      field(t("audit.user"), username), field(t("audit.action"), action), field(t("audit.case"), caseId),
      field(t("filters.since"), since), field(t("filters.until"), until)),
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, t("filters.apply")),
      h("button", { type: "reset", class: "ghost" }, t("filters.reset"))));

  async function load(append = false) {
    const query = {
      username: username.value.trim().toLowerCase(),
      action: action.value,
      case_id: caseId.value,
      since: localInputToIso(since.value),
      until: localInputToIso(until.value),
      before_seq: append ? oldest : null,
      limit: 100,
    };
    try {
      const rows = await api("/audit", { query });
      const trs = rows.map((r) => h("tr", { dataset: { seq: r.seq, action: r.action } },
        h("td", {}, String(r.seq)),
        h("td", {}, formatTime(r.time)),
        h("td", {}, r.username || "—", r.role ? h("small", { class: "muted" }, ` ${r.role}`) : null),
        h("td", {}, r.action),
        h("td", {}, r.case_id ? h("a", { href: `#/cases/${r.case_id}` }, `#${r.case_id}`) : "—"),
        h("td", {}, r.purpose || "—"),
        h("td", { class: "params" }, Object.keys(r.params || {}).length ? JSON.stringify(r.params) : ""),
        h("td", {}, r.result_ids?.length ? String(r.result_ids.length) : ""),
        h("td", { class: r.outcome === "ok" ? "" : "error" }, r.outcome),
        h("td", {}, r.client || "")));
      if (append) tbody.append(...trs);
      else replace(tbody, trs);
      if (rows.length) oldest = rows[rows.length - 1].seq;
      more.hidden = rows.length < 100;
      status.textContent = t("audit.count", { n: tbody.children.length });
    } catch (err) {
      status.textContent = err.message;
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load();
  });
  form.addEventListener("reset", () => setTimeout(() => load()));
  more.addEventListener("click", () => load(true));
  const verify = h("button", {
    type: "button",
    class: "ghost",
    onclick: async () => {
      const v = await api("/audit/verify");
      verifyOut.className = v.intact ? "ok" : "error";
      verifyOut.textContent = v.intact
        ? t("audit.intact", { n: v.entries, hash: v.head_hash.slice(0, 16) })
        : t("audit.broken", { problems: v.problems.join("; ") });
    },
  }, t("audit.verify"));

  await load();
  const el = h("section", { "aria-labelledby": "audit-title" },
    h("div", { class: "heading" }, h("h1", { id: "audit-title" }, t("audit.title")), verify),
    verifyOut, form, status,
    h("div", { class: "scroll" }, h("table", { class: "table audit" },
      h("caption", { class: "sr-only" }, t("audit.title")),
      h("thead", {}, h("tr", {}, ["audit.seq", "audit.time", "audit.user", "audit.action", "audit.case", "audit.purpose",
        "audit.params", "audit.results", "audit.outcome", "audit.client"].map((k) => h("th", { scope: "col" }, t(k))))),
      tbody)),
    more);
  return { el };
}
