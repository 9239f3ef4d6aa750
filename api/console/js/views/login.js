// Sign-in: OAuth2 password flow against /auth/token.

import { api } from "../api.js";
import { field, h } from "../dom.js";
import { t } from "../i18n.js";

export function loginView(notice, onSignedIn) {
  const user = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    name: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const error = h("p", { class: "error", role: "alert", hidden: !notice }, notice || "");
  const submit = h("button", { type: "submit", class: "primary" }, t("login.submit"));
  const form = h("form", { class: "card login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, t("login.title")),
    h("p", { class: "muted" }, t("login.intro")),
    field(t("login.username"), user),
    field(t("login.password"), password),
    error,
    submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      const token = await api("/auth/token", {
        method: "POST",
        form: { username: user.value.trim(), password: password.value },
        anonymous: true,
      });
      onSignedIn(user.value.trim().toLowerCase(), token);
    } catch (err) {
      error.textContent = err.status === 401 ? t("login.refused") : err.message;
      error.hidden = false;
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  return { el: h("div", { class: "center" }, form), focus: () => user.focus() };
}
