// The clothing description (인상착의) as chips: POST /describe/parse reads the text into
// attributes, the operator corrects them (remove a chip, add one), and the chips are written back
// as a canonical English description the parser reads the same way ("child, yellow raincoat,
// navy trousers"), stored as the case's clothing notes. While the endpoint does not exist (404)
// the raw text is shown and kept as written.

import { api, ApiError } from "./api.js";
import { debounce, h, replace, uid } from "./dom.js";
import { t, term } from "./i18n.js";

const COLOURS = ["black", "white", "grey", "navy", "blue", "red", "pink", "yellow", "green", "brown", "beige", "purple"];
/** The parser's vocabulary (models/attributes.py), for adding chips by hand. */
export const VOCABULARY = {
  age_group: ["child", "adult", "elderly"],
  gender: ["female", "male"],
  upper_colour: COLOURS,
  upper_type: ["tshirt", "shirt", "jacket", "coat", "raincoat", "cardigan", "uniform", "hoodie"],
  sleeve: ["short", "long"],
  lower_colour: COLOURS,
  lower_type: ["trousers", "shorts", "skirt"],
  bag_colour: COLOURS,
  accessories: ["backpack", "bag", "hat", "umbrella", "mask", "cane", "walker"],
};
const SINGLE = new Set(["age_group", "gender", "sleeve"]);
const ENGLISH = { tshirt: "t-shirt", cane: "walking stick" };

/** The chips [{field, value}] of a parse response (fields at the top or under "parsed"). */
export function chipsOf(data) {
  const parsed = data.parsed || data.description || data;
  const chips = [];
  for (const fieldName of Object.keys(VOCABULARY)) {
    const value = parsed[fieldName];
    for (const v of Array.isArray(value) ? value : value ? [value] : []) chips.push({ field: fieldName, value: v });
  }
  if (parsed.any_bag && !chips.some((c) => c.field === "bag_colour" || (c.field === "accessories" && c.value === "bag"))) {
    chips.push({ field: "accessories", value: "bag" });
  }
  return chips;
}

/** Chips as a description the parser reads back into the same chips. */
export function compose(chips) {
  const of = (f) => chips.filter((c) => c.field === f).map((c) => ENGLISH[c.value] || c.value);
  const parts = [...of("age_group"), ...of("gender")];
  const upper = [of("upper_colour").join(" and "), of("upper_type").join(" and ") || (of("upper_colour").length ? "top" : "")];
  if (upper[1]) parts.push(upper.filter(Boolean).join(" "));
  if (of("sleeve").length) parts.push(`${of("sleeve")[0]} sleeves`);
  const lower = [of("lower_colour").join(" and "), of("lower_type").join(" and ") || (of("lower_colour").length ? "bottoms" : "")];
  if (lower[1]) parts.push(lower.filter(Boolean).join(" "));
  const accessories = of("accessories");
  if (of("bag_colour").length) {
    parts.push(`${of("bag_colour").join(" and ")} bag`);
    const i = accessories.indexOf("bag");
    if (i >= 0) accessories.splice(i, 1);
  }
  parts.push(...accessories);
  return parts.join(", ");
}

/**
 * The description editor: a textarea and its chips. Returns {el, text(), notes(), textarea}.
 * notes() is the canonical text of the chips when the operator corrected them, else "" (the
 * text as written says the same).
 */
export function descriptionEditor(initial = "") {
  const textarea = h("textarea", { name: "description", rows: 3, maxlength: 2000 }, initial);
  textarea.id = uid("desc");
  const chipsEl = h("ul", { class: "chips", "aria-label": t("describe.chips") });
  const info = h("p", { class: "hint", "aria-live": "polite" });
  const errors = h("p", { class: "error", role: "alert", hidden: true });
  let chips = [];
  let edited = false;
  let available = true;

  const fieldSelect = h("select", { "aria-label": t("describe.field") },
    Object.keys(VOCABULARY).map((f) => h("option", { value: f }, t(`field.${f}`))));
  const valueSelect = h("select", { "aria-label": t("describe.value") });
  const fillValues = () => replace(valueSelect, VOCABULARY[fieldSelect.value].map((v) => h("option", { value: v }, term(fieldSelect.value, v))));
  fieldSelect.addEventListener("change", fillValues);
  fillValues();
  const add = h("button", { type: "button", class: "ghost" }, t("describe.add"));
  add.addEventListener("click", () => {
    const chip = { field: fieldSelect.value, value: valueSelect.value };
    if (SINGLE.has(chip.field)) chips = chips.filter((c) => c.field !== chip.field);
    if (!chips.some((c) => c.field === chip.field && c.value === chip.value)) chips.push(chip);
    edited = true;
    draw();
  });

  function draw() {
    replace(chipsEl, chips.map((c, i) => h("li", { class: "chip", dataset: { field: c.field, value: c.value } },
      h("span", { class: "chip-field" }, t(`field.${c.field}`)),
      h("span", { class: "chip-value" }, term(c.field, c.value)),
      h("button", {
        type: "button",
        class: "chip-remove",
        "aria-label": t("describe.remove", { value: term(c.field, c.value) }),
        onclick: () => {
          chips.splice(i, 1);
          edited = true;
          draw();
        },
      }, "×"))));
    if (!available && !chips.length) {
      const raw = textarea.value.trim();
      if (raw) chipsEl.append(h("li", { class: "chip raw" }, h("span", { class: "chip-value" }, raw)));
    }
  }

  async function parse() {
    const text = textarea.value.trim();
    errors.hidden = true;
    if (!text) {
      if (!edited) chips = [];
      info.textContent = "";
      draw();
      return;
    }
    try {
      const data = await api("/describe/parse", { method: "POST", json: { text } });
      available = true;
      if (!edited) chips = chipsOf(data);
      const ignored = data.ignored || data.parsed?.ignored || [];
      const problems = data.errors || [];
      info.textContent = ignored.length ? t("describe.ignored", { words: ignored.join(", ") }) : "";
      if (problems.length) {
        errors.textContent = problems.join(" ");
        errors.hidden = false;
      }
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) {
        available = false;
        info.textContent = t("describe.unavailable");
      } else if (err instanceof ApiError && err.status !== 401) {
        if (!edited) chips = [];
        errors.textContent = err.message;
        errors.hidden = false;
      }
    }
    draw();
  }

  textarea.addEventListener("input", debounce(parse, 400));
  const reset = h("button", { type: "button", class: "ghost" }, t("describe.reset"));
  reset.addEventListener("click", () => {
    edited = false;
    parse();
  });
  if (initial) parse();
  const el = h("div", { class: "describe" },
    h("label", { for: textarea.id }, t("new.description")),
    textarea,
    h("small", { class: "hint" }, t("new.descriptionHint")),
    h("div", { class: "chips-box" }, h("span", { class: "chips-title" }, t("describe.chips")), chipsEl, info, errors,
      h("div", { class: "chip-add" }, fieldSelect, valueSelect, add, reset)));
  return {
    el,
    textarea,
    text: () => textarea.value.trim(),
    notes: () => (edited ? compose(chips) : ""),
    parse,
  };
}
