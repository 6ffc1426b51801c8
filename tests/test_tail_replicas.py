"""Live tail across replicas: two apps on one database, a client cut off and resuming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from sysevents import Event
from tests.conftest import FreshDatabases
from tests.test_http_repository import LiveServer

pytestmark = pytest.mark.postgres

SOURCE = "replica-test"
WRITERS = 4
BATCHES = 25
BATCH = 100  # 4 writers x 25 batches x 100 = 10 000 events


async def messages(response: httpx.Response) -> AsyncIterator[tuple[str | None, str | None]]:
    """(id, data) of each Server-Sent Event; data ``None`` for a heartbeat."""
    event_id: str | None = None
    data: str | None = None
    async for line in response.aiter_lines():
        if line == "":
            yield event_id, data
            event_id = data = None
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = line[6:]


async def write(client: httpx.AsyncClient, writer: int) -> list[int]:
    ids = []
    for batch in range(BATCHES):
        events = [
            {"event_type": "load", "message": f"w{writer} b{batch} e{i}", "source": SOURCE}
            for i in range(BATCH)
        ]
        response = await client.post("/api/events/batch", json={"events": events})
        assert response.status_code == 201, response.text
        ids += [e["id"] for e in response.json()["events"]]
    return ids


async def test_a_client_on_one_replica_sees_every_event_of_the_other_once(
    test_databases: FreshDatabases,
) -> None:
    url = test_databases.create()
    params = {"source": SOURCE, "heartbeat": "1"}
    received: list[tuple[str, int]] = []
    with LiveServer(url) as a, LiveServer(url) as b:
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=30) as reader,
            httpx.AsyncClient(base_url=b.url, timeout=30) as writer,
        ):
            writers: asyncio.Task[list[list[int]]] | None = None
            last: str | None = None
            async with asyncio.timeout(120):
                # The first connection: cut off after 3000 events, as a killed client is.
                async with reader.stream("GET", "/api/events/stream", params=params) as stream:
                    assert stream.status_code == 200
                    assert stream.headers["content-type"].startswith("text/event-stream")
                    async for event_id, data in messages(stream):
                        last = event_id or last
                        if data is None:
                            if writers is None:  # the stream is live: start writing
                                writers = asyncio.ensure_future(
                                    asyncio.gather(*(write(writer, n) for n in range(WRITERS)))
                                )
                            continue
                        assert event_id is not None
                        received.append((event_id, Event.model_validate_json(data).id))
                        if len(received) == 3000:
                            break
                assert last == received[-1][0]
                # Reconnect where it stopped; the rest, and nothing twice.
                headers = {"Last-Event-ID": last}
                async with reader.stream(
                    "GET", "/api/events/stream", params=params, headers=headers
                ) as stream:
                    async for event_id, data in messages(stream):
                        if data is not None:
                            assert event_id is not None
                            received.append((event_id, Event.model_validate_json(data).id))
                        if len(received) >= WRITERS * BATCHES * BATCH:
                            break
                assert writers is not None
                written = [i for ids in await writers for i in ids]
    ids = [event_id for _, event_id in received]
    assert len(ids) == len(set(ids)), "an event came twice"
    assert sorted(ids) == sorted(written), "an event is missing"
    positions = [tuple(int(p) for p in pos.split("-")) for pos, _ in received]
    assert positions == sorted(positions), "events out of order"
