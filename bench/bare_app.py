"""The HTTP baseline: a bare Litestar app making the same single driver call per request.

No validation model, no cache protocol, no problem details: the floor that the
real app is compared to. Configured by ``BARE_DATABASE_URL``, ``BARE_REDIS_URL``
and ``BARE_PREFIX``; run with ``python bench/bare_app.py PORT [uvicorn options
as JSON]``, under the same uvicorn options as the app it is compared to.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
import uvicorn
from litestar import Litestar, Request, Response, get, post
from psycopg_pool import AsyncConnectionPool

COLUMNS = (
    'id, event_type, severity, message, details, source, "timestamp", created_at, idempotency_key'
)
NAMES = [c.strip().strip('"') for c in COLUMNS.split(",")]
INSERT = (
    'INSERT INTO system_events (event_type, severity, message, details, source, "timestamp") '
    "VALUES (%s, %s, %s, %s, %s, coalesce(%s::timestamptz, now())) RETURNING " + COLUMNS
)
PAGE = "SELECT " + COLUMNS + ' FROM system_events ORDER BY "timestamp" DESC, id DESC LIMIT 51'
COUNT = "SELECT count(*) FROM (SELECT 1 FROM system_events LIMIT 10001) AS capped"
BY_ID = "SELECT " + COLUMNS + " FROM system_events WHERE id = %s"

state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        os.environ["BARE_DATABASE_URL"],
        min_size=2,
        max_size=10,
        open=False,
        kwargs={"autocommit": True},
    )
    await pool.open(wait=True)
    state["pool"] = pool
    state["redis"] = aioredis.Redis.from_url(os.environ["BARE_REDIS_URL"])
    state["prefix"] = os.environ["BARE_PREFIX"]
    try:
        yield
    finally:
        await pool.close()
        await state["redis"].aclose()


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(NAMES, row, strict=True))


@post("/api/events", status_code=201)
async def add(data: dict[str, Any]) -> dict[str, Any]:
    from psycopg.types.json import Jsonb

    async with state["pool"].connection() as conn:
        cur = await conn.execute(
            INSERT,
            (
                data["event_type"],
                data.get("severity", "info"),
                data["message"],
                Jsonb(data.get("details")),
                data.get("source"),
                data.get("timestamp"),
            ),
        )
        row = await cur.fetchone()
    return _row(row)


@get("/api/events/{event_id:int}")
async def get_event(event_id: int) -> Response[bytes]:
    value = await state["redis"].get(f"{state['prefix']}:event:{event_id}")
    return Response(value or b"null", media_type="application/json")


@get("/uncached/events/{event_id:int}")
async def read_event(event_id: int) -> dict[str, Any]:
    async with state["pool"].connection() as conn:
        cur = await conn.execute(BY_ID, (event_id,))
        row = await cur.fetchone()
    return _row(row) if row else {}


@get("/api/events")
async def page(request: Request[Any, Any, Any]) -> dict[str, Any]:
    async with state["pool"].connection() as conn, conn.pipeline():
        rows_cur = await conn.execute(PAGE)
        count_cur = await conn.execute(COUNT)
    rows = await rows_cur.fetchall()
    count = await count_cur.fetchone()
    return {"items": [_row(r) for r in rows[:50]], "total": count[0] if count else 0}


@get("/api/events/stats")
async def stats() -> Response[bytes]:
    value = await state["redis"].get(f"{state['prefix']}:stats")
    return Response(value or b"null", media_type="application/json")


app = Litestar([add, get_event, read_event, page, stats], lifespan=[lifespan])

if __name__ == "__main__":
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {"log_level": "info"}
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), lifespan="on", **options)
