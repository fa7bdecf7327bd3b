// The public API as a frontend team calls it: bearer token, JSON, problem+json errors,
// `Idempotency-Key` on POST, `If-Match` with the event's ETag on changes.

import { token } from "./auth.js";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = { status, ...problem };
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function newIdempotencyKey() {
  return crypto.randomUUID();
}

export async function api(method, path, { body, query, idempotencyKey, ifMatch, auth = true } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    for (const item of [value].flat()) {
      if (item !== undefined && item !== null && item !== "") url.searchParams.append(name, item);
    }
  }
  const headers = { Accept: "application/json" };
  const bearer = token();
  if (auth && bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  if (ifMatch) headers["If-Match"] = ifMatch;
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = response.headers.get("content-type") ?? "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const problem = typeof data === "object" ? data : { title: response.statusText, detail: data };
    if (response.status === 401 && auth) onUnauthorized(problem);
    throw new ApiError(response.status, problem);
  }
  return { status: response.status, data, etag: response.headers.get("ETag") };
}

export const get = (path, options) => api("GET", path, options);
