// What the console reads once per sign-in: the caller, the departments, the policy's taxonomy.

import { get } from "./api.js";

let cache = {};

export function forget() {
  cache = {};
}

function once(name, load) {
  if (!cache[name]) cache[name] = load().catch((error) => {
    delete cache[name];
    throw error;
  });
  return cache[name];
}

export const me = () => once("me", async () => (await get("/v1/me")).data);

export const departments = () => once("departments", async () =>
  (await get("/v1/departments")).data.filter((d) => d.active));

export const policy = () => once("policy", async () => (await get("/v1/policy")).data.document);

export function departmentOptions(list) {
  return list.map((d) => [d.code, `${d.code} · ${d.name}`]);
}

/** User id -> name, for the staff who may list users; empty for the others. */
export const userNames = () => once("users", async () => {
  try {
    return new Map((await get("/v1/users")).data.map((u) => [u.id, u.name]));
  } catch {
    return new Map();
  }
});
