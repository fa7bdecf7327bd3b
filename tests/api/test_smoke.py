import httpx

from tests.conftest import Actor, intake_body


async def test_intake_then_get(client: httpx.AsyncClient, reporter: Actor) -> None:
    response = await client.post("/v1/events", json=intake_body(), headers=reporter.headers)
    assert response.status_code == 201, response.text
    event = response.json()
    assert event["status"] == "reported"
    got = await client.get(f"/v1/events/{event['ref']}", headers=reporter.headers)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == event["id"]
