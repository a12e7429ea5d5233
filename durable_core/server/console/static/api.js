// The JSON API under /api/v1, called with the operator's API key.
//
// The key is asked for once and kept in sessionStorage: it lives as long as the tab, is
// not shared with other tabs and is never written to a cookie, the URL or the page.
// Mutating requests carry X-CSRF-Token, the value of the durable_csrf cookie the server
// set on GET /console/ (double submit: another site can neither read nor set it).

const KEY_STORAGE = "durable-saga.api-key";
const BASE = new URL("../api/v1/", new URL(".", window.location.href));

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function apiKey() {
  return window.sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key) {
  window.sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetApiKey() {
  window.sessionStorage.removeItem(KEY_STORAGE);
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "durable_csrf") return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** The absolute URL of an API path such as "executions/ID" (for display, e.g. curl). */
export function apiUrl(path) {
  return new URL(path, BASE).href;
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    const token = csrfToken();
    if (token) headers["X-CSRF-Token"] = token;
  }
  let response;
  try {
    response = await fetch(new URL(path, BASE), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError(0, "network", `cannot reach the API (${e.message})`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const err = data && data.error;
    throw new ApiError(
      response.status,
      (err && err.code) || "http",
      (err && err.message) || `${method} ${path}: HTTP ${response.status}`,
    );
  }
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body ?? {});

/** "executions?status=RUNNING&..." from an object, leaving out empty values. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const text = q.toString();
  return text ? `${path}?${text}` : path;
}

export const seg = encodeURIComponent;

let published = null;

/**
 * Whether the server publishes `method` on the API path `template` (e.g. "POST",
 * "/executions/{id}/callbacks/{operation_id}/succeed") in its OpenAPI schema; parameter
 * names do not matter. The schema is read once per page load.
 */
export async function offers(method, template) {
  if (published === null) {
    published = get("openapi.json")
      .then((schema) => {
        const found = new Set();
        for (const [path, ops] of Object.entries((schema && schema.paths) || {})) {
          for (const m of Object.keys(ops)) found.add(`${m.toUpperCase()} ${path.replace(/\{[^}]*\}/g, "{}")}`);
        }
        return found;
      })
      .catch(() => new Set());
  }
  const key = `${method.toUpperCase()} ${template.replace(/\{[^}]*\}/g, "{}")}`;
  const found = await published;
  return found.has(key.replace(" ", " /api/v1")) || found.has(key); // with or without the mount

}
