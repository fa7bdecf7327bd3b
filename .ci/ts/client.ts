// A small client typed from the OpenAPI document (issue 15, item 5): `.ci/ts/check.sh`
// generates ./schema.d.ts from openapi/openapi.json and compiles this file with
// `tsc --strict`, so a document that a generated client cannot use fails CI.
import type { components, paths } from "./schema";

export type Problem = components["schemas"]["Problem"];
type EventCreate = components["schemas"]["EventCreate"];
type Created = paths["/v1/events"]["post"]["responses"][201]["content"]["application/json"];
type Classification = components["schemas"]["ClassificationIn"];
type Classified =
  paths["/v1/events/{event_id}/classification"]["post"]["responses"][200]["content"]["application/json"];
// Every error is the one Problem shape, under application/problem+json.
type GateNotMet =
  paths["/v1/events/{event_id}/classification"]["post"]["responses"][409]["content"]["application/problem+json"];
type Invalid = paths["/v1/events"]["post"]["responses"][422]["content"]["application/problem+json"];
type Stale =
  paths["/v1/events/{event_id}/classification"]["post"]["responses"][412]["content"]["application/problem+json"];

export type Result<T> = { ok: true; value: T; etag: string | null } | { ok: false; problem: Problem };

const problemsAreProblems: Array<GateNotMet | Invalid | Stale> = [];
const _sameShape: Problem[] = problemsAreProblems;

async function call<T>(response: Response): Promise<Result<T>> {
  if (response.ok) {
    return { ok: true, value: (await response.json()) as T, etag: response.headers.get("ETag") };
  }
  return { ok: false, problem: (await response.json()) as Problem };
}

export class Client {
  constructor(
    private readonly base: string,
    private readonly token: string,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Authorization: `Bearer ${this.token}`, "Content-Type": "application/json", ...extra };
  }

  async createEvent(body: EventCreate, idempotencyKey: string): Promise<Result<Created>> {
    const response = await fetch(`${this.base}/v1/events`, {
      method: "POST",
      headers: this.headers({ "Idempotency-Key": idempotencyKey }),
      body: JSON.stringify(body),
    });
    return call<Created>(response);
  }

  async classify(eventId: string, body: Classification, etag?: string): Promise<Result<Classified>> {
    const response = await fetch(`${this.base}/v1/events/${encodeURIComponent(eventId)}/classification`, {
      method: "POST",
      headers: this.headers(etag ? { "If-Match": etag } : {}),
      body: JSON.stringify(body),
    });
    return call<Classified>(response);
  }
}

/** What a UI shows for a problem: its detail, then what a gate still needs or what is allowed. */
export function describe(problem: Problem): string {
  const lines: string[] = [`${problem.status} ${problem.title}: ${problem.detail}`];
  for (const missing of problem.missing ?? []) lines.push(`missing: ${missing}`);
  for (const action of problem.allowed ?? []) lines.push(`allowed: ${action}`);
  for (const error of problem.errors ?? []) lines.push(`${error.field}: ${error.message}`);
  return lines.join("\n");
}

export async function example(client: Client): Promise<string> {
  const created = await client.createEvent(
    {
      title: "仓库B区货架倒塌",
      description: "今天上午十点左右，仓库B区一排货架倒塌。",
      channel: "hotline",
      urgent: true,
      reporter: { name: "王伟", phone: "+86 138 0013 8000" },
    },
    "intake-2026-12-01-0001",
  );
  if (!created.ok) return describe(created.problem);
  const classified = await client.classify(
    created.value.id,
    { category: "emergency", subcategory: "safety_accident" },
    created.etag ?? undefined,
  );
  return classified.ok ? `${classified.value.ref}: ${classified.value.status}` : describe(classified.problem);
}
