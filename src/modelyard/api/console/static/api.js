// The REST API, as the console calls it: every call sends the key the user gave (kept for this
// browser tab only, as /docs keeps it), and every failure is the API's one error envelope.

const KEY = "modelyard-api-key";

export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export function hasKey() {
  return Boolean(sessionStorage.getItem(KEY));
}

export async function call(method, path, { json, form } = {}) {
  const headers = {};
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, "unreachable", `the API did not answer (${error.message})`);
  }
  if (response.ok) return response;
  let envelope = {};
  try {
    envelope = (await response.json()).error || {};
  } catch {
    // not JSON: a proxy's page, say
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent("api-key-refused"));
  throw new ApiError(response.status, envelope.code || `http_${response.status}`,
    envelope.message || response.statusText, envelope.details || []);
}

export async function get(path) {
  return (await call("GET", path)).json();
}

export async function send(method, path, json) {
  const response = await call(method, path, { json });
  return response.status === 204 ? null : response.json();
}

export function path(...parts) {
  return "/" + parts.map((part) => encodeURIComponent(String(part))).join("/");
}

export function fileName(response, fallback) {
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/.exec(disposition);
  return match ? match[1] : fallback;
}

// A file the API answers with, saved by the browser (fetched with the key, which a plain link
// could not send).
export async function download(url, fallback) {
  const response = await call("GET", url);
  save(await response.blob(), fileName(response, fallback));
}

export function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
