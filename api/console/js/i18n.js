// Korean and English: every string of the console is in i18n/ko.json and i18n/en.json. Korean is
// the default when the browser prefers it; the operator's choice is remembered in localStorage
// (a preference, not a secret).

const LANGS = ["ko", "en"];
const PREF = "reunite.lang";
const dicts = {};
let lang = "en";

export function preferredLanguage() {
  const stored = localStorage.getItem(PREF);
  if (LANGS.includes(stored)) return stored;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

export async function loadDictionaries() {
  await Promise.all(
    LANGS.map(async (code) => {
      const response = await fetch(`i18n/${code}.json`);
      dicts[code] = await response.json();
    }),
  );
  setLanguage(preferredLanguage(), false);
}

export function language() {
  return lang;
}

export function setLanguage(code, remember = true) {
  lang = LANGS.includes(code) ? code : "en";
  if (remember) localStorage.setItem(PREF, lang);
  document.documentElement.lang = lang;
  document.title = t("app.title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
}

/** The string for key in the current language, {name} placeholders filled from vars. */
export function t(key, vars = {}) {
  const text = dicts[lang]?.[key] ?? dicts.en?.[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** A value of the attribute vocabulary (colours, garments...) in the current language. */
export function term(field, value) {
  const key = `value.${value}`;
  const text = t(key);
  return text === key ? String(value) : text;
}

const formats = {};
export function formatTime(iso) {
  if (!iso) return "—";
  const key = lang;
  formats[key] ||= new Intl.DateTimeFormat(lang === "ko" ? "ko-KR" : "en-GB", {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  return formats[key].format(new Date(iso));
}

/** A cosine similarity as a percentage; a fused score (photos with a description: z-scores,
 * no fixed range) as a plain number. */
export function formatScore(score, basis = "photos") {
  if (score === null || score === undefined) return "—";
  return basis === "photos" ? `${(score * 100).toFixed(1)}%` : score.toFixed(2);
}
