// The API client: the bearer token lives in sessionStorage (gone when the tab closes, never in
// localStorage), every call sends it, and a 401 anywhere signs the operator out.

const KEY = "reunite.session";
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail || title || `HTTP ${status}`);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export function setSession(value) {
  if (value) sessionStorage.setItem(KEY, JSON.stringify(value));
  else sessionStorage.removeItem(KEY);
}

export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function isSupervisor() {
  const s = session();
  return !!s && (s.role === "supervisor" || s.role === "admin");
}

async function problemOf(response) {
  try {
    const body = await response.json();
    return new ApiError(response.status, body.title, body.detail);
  } catch {
    return new ApiError(response.status, response.statusText, "");
  }
}

/**
 * Call the API. opts: method, query (object; arrays repeat the key), json, form (FormData or
 * object), headers, raw (return the Response).
 */
export async function api(path, opts = {}) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(opts.query || {})) {
    if (value === null || value === undefined || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, v);
  }
  const headers = { Accept: "application/json", ...(opts.headers || {}) };
  const s = session();
  if (s && !opts.anonymous) headers.Authorization = `Bearer ${s.token}`;
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.form instanceof FormData) {
    body = opts.form;
  } else if (opts.form) {
    body = new URLSearchParams(opts.form);
  }
  const response = await fetch(url, { method: opts.method || "GET", headers, body });
  if (response.status === 401 && !opts.anonymous) {
    setSession(null);
    onUnauthorized();
  }
  if (!response.ok) throw await problemOf(response);
  if (opts.raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/**
 * Images need the bearer token, which an <img src> cannot send: fetch them and show a blob URL
 * (the CSP allows blob: images). Returns false when the image does not exist (404).
 */
export async function loadImage(img, path, urls) {
  try {
    const response = await api(path, { raw: true, headers: { Accept: "image/*" } });
    const url = URL.createObjectURL(await response.blob());
    if (urls) urls.add(url);
    img.src = url;
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return false;
    throw err;
  }
}
