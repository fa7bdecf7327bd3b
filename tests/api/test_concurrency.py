"""Transitions lock the event row: two concurrent transitions on real, separate connections
never both succeed and no update is lost (issue 4, item 9). Keyed intakes racing on the real
pool make one event per Idempotency-Key (product.md section 4).

These tests cannot run inside the per-test rolled-back transaction (one connection cannot race
itself), so they use an app whose requests really commit, and delete what they made."""

import asyncio
import uuid

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.idempotency_models import IdempotencyRecord
from app.events.models import Event, TimelineEntry
from app.outbox.models import OutboxMessage
from app.rules.vocabulary import Status
from tests.api import flow
from tests.api.conftest import Committed
from tests.api.flow import BUSINESS_ISSUE, url
from tests.conftest import Actor, CommittedKey, intake_body


async def _race(
    world: Committed,
    first: tuple[Actor, str, flow.JSON | None],
    second: tuple[Actor, str, flow.JSON | None],
) -> list[httpx.Response]:
    async with world.client() as one, world.client() as two:
        return list(
            await asyncio.gather(
                one.post(first[1], json=first[2], headers=first[0].headers),
                two.post(second[1], json=second[2], headers=second[0].headers),
            )
        )


async def _rows(world: Committed, event_id: str) -> tuple[list[str], list[str]]:
    async with world.maker() as session:
        actions = await session.scalars(
            sa.select(TimelineEntry.action)
            .where(TimelineEntry.event_id == uuid.UUID(event_id))
            .order_by(TimelineEntry.seq)
        )
        outbox = await session.scalars(
            sa.select(OutboxMessage.type).where(OutboxMessage.event_id == uuid.UUID(event_id))
        )
        return list(actions), list(outbox)


async def test_two_concurrent_closes_exactly_one_succeeds(committed: Committed) -> None:
    cast = await committed.cast("IT")
    async with committed.client() as client:
        event = await flow.walk(client, cast, BUSINESS_ISSUE, Status.REVIEWED)
    event_id = event["id"]
    close = url(event_id, "/close")

    responses = await _race(committed, (cast.desk, close, None), (cast.supervisor, close, None))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409], [r.text for r in responses]
    won = next(r for r in responses if r.status_code == 200)
    lost = next(r for r in responses if r.status_code == 409)
    assert won.json()["status"] == "closed"
    assert lost.json()["type"].endswith("/transition-not-allowed")
    assert lost.json()["allowed"] == ["add_note"]
    actions, outbox = await _rows(committed, event_id)
    assert actions.count("close") == 1
    assert outbox.count("event.closed") == 1
    async with committed.client() as client:
        history = await flow.timeline(client, cast.desk, event_id)
        assert history["chain_valid"] is True
        final = await flow.call(client, "GET", url(event_id), cast.desk)
    assert final["version"] == won.json()["version"] == event["version"] + 1


async def test_close_racing_reopen_leaves_one_consistent_outcome(committed: Committed) -> None:
    cast = await committed.cast("IT")
    async with committed.client() as client:
        event = await flow.walk(client, cast, BUSINESS_ISSUE, Status.REVIEWED)
    event_id = event["id"]

    responses = await _race(
        committed,
        (cast.desk, url(event_id, "/close"), None),
        (cast.head, url(event_id, "/reopen"), {"reason": "The customer called again"}),
    )

    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    assert winner["status"] in ("closed", "in_progress")
    actions, _ = await _rows(committed, event_id)
    assert (actions.count("close"), actions.count("reopen")) in ((1, 0), (0, 1))
    async with committed.client() as client:
        final = await flow.call(client, "GET", url(event_id), cast.desk)
        assert (await flow.timeline(client, cast.desk, event_id))["chain_valid"] is True
    assert final["status"] == winner["status"]
    assert final["version"] == event["version"] + 1


async def test_concurrent_step_updates_lose_nothing(committed: Committed) -> None:
    """Two people finishing different steps at once: both changes land, each on its own
    version, and the timeline chain stays valid."""
    cast = await committed.cast("IT")
    async with committed.client() as client:
        event = await flow.walk(client, cast, BUSINESS_ISSUE, Status.ASSIGNED)
        event = await flow.call(
            client,
            "PUT",
            url(event["id"], "/plan"),
            cast.handler,
            json=flow.plan_body(cast.handler, cast.head),
        )
    first, second = event["steps"]
    async with committed.client() as one, committed.client() as two:
        responses = await asyncio.gather(
            one.patch(
                url(event["id"], f"/steps/{first['id']}"),
                json={"status": "done"},
                headers=cast.handler.headers,
            ),
            two.patch(
                url(event["id"], f"/steps/{second['id']}"),
                json={"status": "done"},
                headers=cast.head.headers,
            ),
        )
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == [
        event["version"] + 1,
        event["version"] + 2,
    ]
    async with committed.client() as client:
        final = await flow.call(client, "GET", url(event["id"]), cast.desk)
        assert (await flow.timeline(client, cast.desk, event["id"]))["chain_valid"] is True
    assert [s["status"] for s in final["steps"]] == ["done", "done"]


async def _keyed_intakes(
    client: httpx.AsyncClient, owner: CommittedKey, keys: list[str]
) -> list[httpx.Response]:
    """One intake per key, all at once, each on its own pooled connection."""
    auth = {"Authorization": f"Bearer {owner.token}"}
    return list(
        await asyncio.gather(
            *(
                client.post(
                    "/v1/events", json=intake_body(), headers={**auth, "Idempotency-Key": k}
                )
                for k in keys
            )
        )
    )


async def _events_of(engine: AsyncEngine, owner: CommittedKey) -> list[uuid.UUID]:
    async with engine.connect() as conn:
        return list(
            await conn.scalars(sa.select(Event.id).where(Event.created_by == owner.user_id))
        )


async def test_concurrent_intakes_with_one_key_make_one_event(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, committed_key: CommittedKey
) -> None:
    """product.md section 4: the same keyed intake sent 8 times at once on real connections
    makes one event; every answer is its first response (replayed) or 409 while it runs."""
    responses = await _keyed_intakes(committing_client, committed_key, ["same"] * 8)

    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    created = [r for r in responses if r.status_code == 201]
    first = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(first) == 1
    for replay in created:
        assert replay.content == first[0].content
        assert replay.headers["location"] == first[0].headers["location"]
    for running in (r for r in responses if r.status_code == 409):
        assert running.json()["type"].endswith("/idempotency-in-flight")
    assert await _events_of(engine, committed_key) == [uuid.UUID(first[0].json()["id"])]
    later = await _keyed_intakes(committing_client, committed_key, ["same"])
    assert (later[0].status_code, later[0].content) == (201, first[0].content)
    assert later[0].headers["idempotent-replayed"] == "true"


async def test_concurrent_intakes_with_distinct_keys_get_distinct_refs(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, committed_key: CommittedKey
) -> None:
    """Distinct keys are distinct requests: 8 events with 8 refs, each key storing its own
    first response (product.md section 4)."""
    keys = [f"k{i}" for i in range(8)]
    responses = await _keyed_intakes(committing_client, committed_key, keys)

    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
    assert not any("idempotent-replayed" in r.headers for r in responses)
    assert len({r.json()["ref"] for r in responses}) == 8
    ids = {uuid.UUID(r.json()["id"]) for r in responses}
    assert set(await _events_of(engine, committed_key)) == ids
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(IdempotencyRecord.key, IdempotencyRecord.body).where(
                IdempotencyRecord.scope == str(committed_key.key_id)
            )
        )
        stored = dict(rows.all())
    assert stored == {k: r.content for k, r in zip(keys, responses, strict=True)}


async def test_one_key_two_bodies_on_a_known_external_ref_never_both_answer(
    committing_client: httpx.AsyncClient, engine: AsyncEngine, committed_key: CommittedKey
) -> None:
    """product.md section 4: a key used at once for two different bodies that both name a
    known external_ref: one stores its 200, the other is refused (422, or 409 while the first
    still runs); the stored answer is never overwritten by the second."""
    ref = {"system": "zendesk", "id": f"T-{uuid.uuid4().hex[:8]}"}
    auth = {"Authorization": f"Bearer {committed_key.token}"}
    known = await committing_client.post(
        "/v1/events", json=intake_body(external_ref=ref), headers=auth
    )
    assert known.status_code == 201
    key = f"two-bodies-{uuid.uuid4()}"

    responses = await asyncio.gather(
        *(
            committing_client.post(
                "/v1/events",
                json=intake_body(external_ref=ref, title=title),
                headers={**auth, "Idempotency-Key": key},
            )
            for title in ("First wording", "Second wording")
        )
    )

    codes = sorted(r.status_code for r in responses)
    assert codes in ([200, 409], [200, 422]), [r.text for r in responses]
    answered = next(r for r in responses if r.status_code == 200)
    assert answered.json()["id"] == known.json()["id"]
    async with engine.connect() as conn:
        stored = await conn.scalar(
            sa.select(IdempotencyRecord.body).where(
                IdempotencyRecord.scope == str(committed_key.key_id), IdempotencyRecord.key == key
            )
        )
    assert stored == answered.content
    assert await _events_of(engine, committed_key) == [uuid.UUID(known.json()["id"])]


async def test_one_idempotency_key_on_twenty_concurrent_notes_makes_one_note(
    committed: Committed,
) -> None:
    """Issue 10, item 1: the key's lock holds for the request's whole transaction on every
    POST, not only intake. Twenty requests with one key on real connections at once: exactly
    one note; every other answer is 409 `idempotency-in-flight` or a replay of the first."""
    cast = await committed.cast("IT")
    async with committed.client() as client:
        event = await flow.walk(client, cast, BUSINESS_ISSUE, Status.ASSIGNED)
    notes = url(event["id"], "/notes")
    headers = {**cast.handler.headers, "Idempotency-Key": f"note-{uuid.uuid4()}"}
    body = {"kind": "progress", "body": "Called the vendor; a patch is due tomorrow."}
    clients = [committed.client() for _ in range(20)]
    try:
        responses = await asyncio.gather(
            *(c.post(notes, json=body, headers=headers) for c in clients)
        )
    finally:
        for c in clients:
            await c.aclose()

    created = [r for r in responses if r.status_code == 201]
    firsts = [r for r in created if "idempotent-replayed" not in r.headers]
    assert len(firsts) == 1, [
        (r.status_code, r.headers.get("idempotent-replayed")) for r in responses
    ]
    assert all(r.content == firsts[0].content for r in created)
    others = [r for r in responses if r.status_code != 201]
    assert all(r.status_code == 409 for r in others), [r.text for r in others]
    assert all(r.json()["type"].endswith("/idempotency-in-flight") for r in others)
    async with committed.client() as client:
        listed = await client.get(notes, headers=cast.handler.headers)
    assert [n["id"] for n in listed.json()] == [firsts[0].json()["id"]]
    actions, outbox = await _rows(committed, event["id"])
    assert actions.count("note") == 1
    assert outbox.count("event.note_added") == 1
    async with committed.maker() as session:
        stored = await session.scalar(
            sa.select(IdempotencyRecord.body).where(
                IdempotencyRecord.key == headers["Idempotency-Key"]
            )
        )
        await session.execute(
            sa.delete(IdempotencyRecord).where(IdempotencyRecord.key == headers["Idempotency-Key"])
        )
        await session.commit()
    assert stored == firsts[0].content
