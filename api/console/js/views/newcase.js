// A new case: alias, age group, photos, last seen (time, place, camera picked on the plan),
// and the clothing description with its chips.

import { api } from "../api.js";
import { descriptionEditor } from "../describe.js";
import { field, h, localInputToIso, replace } from "../dom.js";
import { t } from "../i18n.js";
import { photoPicker } from "../photos.js";
import { cameraPlan } from "../plan.js";

const BODY_PHOTOS = 3; // photos per request (the API's body limit); more are added one by one

export async function newCaseView() {
  const cameras = await api("/cameras");
  const alias = h("input", { name: "alias", required: true, maxlength: 200, autocomplete: "off" });
  const age = h("select", { name: "age_group" },
    h("option", { value: "" }, t("age.unknown")),
    ["child", "adult", "elderly"].map((a) => h("option", { value: a }, t(`age.${a}`))));
  const kind = h("select", { name: "photo_kind" },
    ["family", "cctv", "other"].map((k) => h("option", { value: k }, t(`photoKind.${k}`))));
  const time = h("input", { name: "last_seen_time", type: "datetime-local" });
  const place = h("input", { name: "last_seen_place", maxlength: 500 });
  const cameraSelect = h("select", { name: "last_seen_camera_id" },
    h("option", { value: "" }, t("new.noCamera")),
    cameras.map((c) => h("option", { value: c.id }, `${c.name} (${c.id})`)));
  const planBox = h("div", { class: "plan-box" });
  const drawPlan = () => replace(planBox, cameraPlan(cameras, {
    selected: cameraSelect.value || null,
    label: t("new.planLabel"),
    onPick: (camera) => {
      cameraSelect.value = cameraSelect.value === camera.id ? "" : camera.id;
      if (cameraSelect.value && !place.value.trim()) place.value = camera.name;
      drawPlan();
      planBox.querySelector(`[data-camera="${CSS.escape(camera.id)}"]`)?.focus();
    },
  }));
  cameraSelect.addEventListener("change", drawPlan);
  drawPlan();
  const photos = photoPicker();
  const description = descriptionEditor();
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary" }, t("new.submit"));

  const form = h("form", { class: "new-case", "aria-labelledby": "new-title", novalidate: false },
    h("h1", { id: "new-title" }, t("new.title")),
    h("div", { class: "columns" },
      h("div", { class: "column" },
        field(t("new.alias"), alias, t("new.aliasHint")),
        h("div", { class: "row" }, field(t("new.age"), age), field(t("new.photoKind"), kind)),
        photos.el,
        description.el),
      h("div", { class: "column" },
        h("fieldset", {}, h("legend", {}, t("new.lastSeen")),
          field(t("new.time"), time),
          field(t("new.place"), place),
          field(t("new.camera"), cameraSelect, t("new.cameraHint")),
          planBox))),
    error,
    h("div", { class: "actions" }, submit, h("a", { href: "#/cases", class: "button ghost" }, t("common.cancel"))));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    if (photos.busy()) {
      error.textContent = t("new.waitPhotos");
      error.hidden = false;
      return;
    }
    submit.disabled = true;
    try {
      const files = photos.files();
      const body = new FormData();
      body.append("alias", alias.value.trim());
      const values = {
        age_group: age.value,
        description: description.text(),
        clothing_notes: description.notes(), // only when the operator corrected the chips
        last_seen_time: localInputToIso(time.value),
        last_seen_place: place.value.trim(),
        last_seen_camera_id: cameraSelect.value,
        photo_kind: kind.value,
      };
      for (const [key, value] of Object.entries(values)) if (value) body.append(key, value);
      for (const file of files.slice(0, BODY_PHOTOS)) body.append("photos", file, file.name);
      const created = await api("/cases", { method: "POST", form: body });
      for (const file of files.slice(BODY_PHOTOS)) {
        const more = new FormData();
        more.append("photo", file, file.name);
        more.append("kind", kind.value);
        await api(`/cases/${created.id}/photos`, { method: "POST", form: more });
      }
      photos.cleanup();
      window.location.hash = `#/cases/${created.id}`;
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
      submit.disabled = false;
    }
  });
  return { el: form, focus: () => alias.focus(), cleanup: photos.cleanup };
}
