// Supervisor: accounts (GET/POST/PATCH /users): add, change role, disable.

import { api, session } from "../api.js";
import { field, h, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";

const ROLES = ["operator", "supervisor", "researcher", "admin"];

export async function usersView() {
  const tbody = h("tbody");
  const status = h("p", { class: "muted", role: "status" });
  const error = h("p", { class: "error", role: "alert", hidden: true });

  const roleSelect = (value, label) => {
    const select = h("select", { "aria-label": label }, ROLES.map((r) => h("option", { value: r }, t(`role.${r}`))));
    select.value = value;
    return select;
  };

  async function change(username, body) {
    error.hidden = true;
    try {
      await api(`/users/${encodeURIComponent(username)}`, { method: "PATCH", json: body });
      status.textContent = t("users.changed", { user: username });
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
    await load();
  }

  async function load() {
    const users = await api("/users");
    const me = session()?.username;
    replace(tbody, users.map((u) => {
      const role = roleSelect(u.role, t("users.roleOf", { user: u.username }));
      role.addEventListener("change", () => change(u.username, { role: role.value }));
      const toggle = h("button", {
        type: "button",
        class: "ghost",
        disabled: u.username === me,
        onclick: () => change(u.username, { disabled: !u.disabled }),
      }, u.disabled ? t("users.enable") : t("users.disable"));
      return h("tr", { dataset: { user: u.username }, class: u.disabled ? "disabled" : "" },
        h("th", { scope: "row" }, u.username),
        h("td", {}, role),
        h("td", {}, u.disabled ? t("users.disabled") : t("users.active")),
        h("td", {}, formatTime(u.created_at)),
        h("td", {}, toggle));
    }));
  }

  const name = h("input", { name: "username", required: true, pattern: "[a-z0-9][a-z0-9._\\-]+", minlength: 2, maxlength: 64, autocomplete: "off" });
  const password = h("input", { name: "password", type: "password", required: true, minlength: 12, autocomplete: "new-password" });
  const newRole = roleSelect("operator", t("users.role"));
  newRole.name = "role";
  const form = h("form", { class: "card", "aria-labelledby": "add-user-title" },
    h("h2", { id: "add-user-title" }, t("users.add")),
    h("div", { class: "row" },
      field(t("users.name"), name, t("users.nameHint")),
      field(t("login.password"), password, t("users.passwordHint")),
      field(t("users.role"), newRole)),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, t("users.add"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    try {
      await api("/users", { method: "POST", json: { username: name.value.trim(), password: password.value, role: newRole.value } });
      status.textContent = t("users.added", { user: name.value.trim() });
      form.reset();
      await load();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });

  await load();
  const el = h("section", { "aria-labelledby": "users-title" },
    h("h1", { id: "users-title" }, t("users.title")),
    status, error,
    h("div", { class: "scroll" }, h("table", { class: "table" },
      h("caption", { class: "sr-only" }, t("users.title")),
      h("thead", {}, h("tr", {}, ["users.name", "users.role", "users.state", "users.created", "users.actions"]
        .map((k) => h("th", { scope: "col" }, t(k))))),
      tbody)),
    form);
  return { el };
}
