"""The baseline: what a user could write in an afternoon with FastAPI and raw asyncpg.

Same tables, same indexes, same database as the service; intake is the same two rows (the
event and its first timeline entry) in one transaction, get is one SELECT by primary key.
No auth, no idempotency key, no outbox, no policy. Run:
`BARE_DATABASE_URL=postgresql://... BARE_USER_ID=<uuid> uvicorn bare_app:app --app-dir bench`.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import uuid_utils
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

INSERT_EVENT = """
INSERT INTO event (id, ref, status, title, description, channel, occurred_at, reported_at,
    urgent, reporter_name, reporter_email, reporter_phone, created_by, involved_departments,
    involved_people, intake_department, cooperating_departments, plan_discussed_with,
    respond_by, version, created_at, updated_at)
VALUES ($1, 'EV-' || extract(year FROM $7::timestamptz)::int || '-'
            || lpad(nextval('event_ref_seq')::text, 6, '0'),
        'reported', $2, $3, $4, $5, $7, $6, $8, $9, $10, $11, $12, '{}', 'CS', '{}', '{}',
        $13, 1, $7, $7)
RETURNING id, ref, status, version, title, channel, urgent, respond_by, created_at
"""

INSERT_TIMELINE = """
INSERT INTO timeline_entry (id, event_id, seq, at, actor_id, action, after, prev_hash, hash)
VALUES ($1, $2, 1, $3, $4, 'intake', $5::jsonb, $6, $7)
"""

GET_EVENT = "SELECT * FROM event WHERE id = $1"


class Reporter(BaseModel):
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)


class EventIn(BaseModel):
    title: str = Field(max_length=200)
    description: str = Field(max_length=10_000)
    channel: str
    occurred_at: datetime | None = None
    urgent: bool = False
    reporter: Reporter
    involved_departments: list[str] = Field(default_factory=list)


def _uuid7() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ["BARE_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    size = int(os.environ.get("BARE_POOL_MAX", "30"))
    app.state.pool = await asyncpg.create_pool(
        url, min_size=size, max_size=size, server_settings={"jit": "off"}
    )
    app.state.user_id = uuid.UUID(os.environ["BARE_USER_ID"])
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/events", status_code=201)
async def create_event(body: EventIn) -> dict[str, Any]:
    now = datetime.now(UTC)
    event_id = _uuid7()
    user_id: uuid.UUID = app.state.user_id
    after = {"status": "reported", "title": body.title, "channel": body.channel}
    digest = hashlib.sha256(
        json.dumps({"event_id": str(event_id), "seq": 1, "after": after}).encode()
    ).hexdigest()
    async with app.state.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            INSERT_EVENT,
            event_id,
            body.title,
            body.description,
            body.channel,
            body.occurred_at,
            body.urgent,
            now,
            body.reporter.name,
            body.reporter.email,
            body.reporter.phone,
            user_id,
            body.involved_departments,
            now + timedelta(hours=1 if body.urgent else 24),
        )
        await conn.execute(
            INSERT_TIMELINE, _uuid7(), event_id, now, user_id, json.dumps(after), "0" * 64, digest
        )
    return dict(row)


@app.get("/v1/events/{event_id}")
async def get_event(event_id: uuid.UUID) -> dict[str, Any]:
    async with app.state.pool.acquire() as conn:
        row = await conn.fetchrow(GET_EVENT, event_id)
    if row is None:
        raise HTTPException(404)
    data = dict(row)
    for key in ("impact", "grading", "routing"):
        if isinstance(data.get(key), str):
            data[key] = json.loads(data[key])
    return data
