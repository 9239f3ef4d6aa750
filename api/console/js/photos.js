// Case photos before they are sent: drag and drop or the file picker, a preview with the person
// the server will search for outlined (POST /photos/preview, which stores nothing). Without that
// endpoint (404) the photo is shown without an outline.

import { api, ApiError } from "./api.js";
import { h, replace, uid } from "./dom.js";
import { t } from "./i18n.js";

const TYPES = ["image/jpeg", "image/png", "image/webp"];

async function preview(file) {
  const form = new FormData();
  form.append("photo", file, file.name);
  try {
    return { result: await api("/photos/preview", { method: "POST", form }) };
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return { unavailable: true };
    if (err instanceof ApiError && err.status === 401) throw err;
    return { problem: err.message };
  }
}

/** A photo with its person box drawn over it (an SVG in the image's pixel coordinates). */
export function outlined(url, box, width, height, alt) {
  const img = h("img", { src: url, alt });
  const figure = h("div", { class: "outlined" }, img);
  const draw = (w, hgt) => {
    if (!box) return;
    figure.append(h("svg:svg", { viewBox: `0 0 ${w} ${hgt}`, class: "outline", "aria-hidden": "true", preserveAspectRatio: "none" },
      h("svg:rect", { x: box[0], y: box[1], width: box[2] - box[0], height: box[3] - box[1] })));
  };
  if (width && height) draw(width, height);
  else img.addEventListener("load", () => draw(img.naturalWidth, img.naturalHeight), { once: true });
  return figure;
}

/** The photo picker. Returns {el, files(), busy()}. */
export function photoPicker() {
  const photos = [];
  const input = h("input", { type: "file", accept: TYPES.join(","), multiple: true, class: "sr-only" });
  input.id = uid("photos");
  const list = h("ul", { class: "photo-list", "aria-live": "polite" });
  const zone = h("label", { class: "dropzone", for: input.id },
    h("strong", {}, t("new.photosDrop")), h("span", {}, t("new.photosPick")));
  let pending = 0;

  function draw() {
    replace(list, photos.map((p, i) => {
      let status;
      if (p.loading) status = h("span", { class: "muted" }, t("photo.checking"));
      else if (p.problem) status = h("span", { class: "error" }, p.problem);
      else if (p.unavailable) status = h("span", { class: "muted" }, t("photo.noOutline"));
      else if (p.result) status = h("span", { class: "ok" }, t(`photo.found.${p.result.found_by}`));
      const box = p.result ? p.result.box : null;
      return h("li", { class: "photo", dataset: { found: p.result ? p.result.found_by : p.unavailable ? "unavailable" : "" } },
        outlined(p.url, box, p.result?.width, p.result?.height, t("photo.alt", { name: p.file.name })),
        h("div", { class: "photo-meta" }, h("span", { class: "name" }, p.file.name), status,
          h("button", {
            type: "button",
            class: "ghost",
            onclick: () => {
              URL.revokeObjectURL(p.url);
              photos.splice(i, 1);
              draw();
            },
          }, t("photo.remove"))));
    }));
  }

  async function addFiles(files) {
    for (const file of files) {
      if (!TYPES.includes(file.type)) {
        photos.push({ file, url: URL.createObjectURL(file), problem: t("photo.badType") });
        continue;
      }
      const p = { file, url: URL.createObjectURL(file), loading: true };
      photos.push(p);
      pending += 1;
      draw();
      preview(file).then((r) => {
        Object.assign(p, r, { loading: false });
      }).catch(() => {
        p.loading = false;
      }).finally(() => {
        pending -= 1;
        draw();
      });
    }
    draw();
  }

  input.addEventListener("change", () => {
    addFiles([...input.files]);
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    addFiles([...e.dataTransfer.files]);
  });
  const el = h("fieldset", { class: "photos" }, h("legend", {}, t("new.photos")), input, zone,
    h("small", { class: "hint" }, t("new.photosHint")), list);
  return {
    el,
    files: () => photos.filter((p) => !p.problem).map((p) => p.file),
    busy: () => pending > 0,
    cleanup: () => photos.forEach((p) => URL.revokeObjectURL(p.url)),
  };
}
