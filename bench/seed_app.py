"""The seed's stack, for the head-to-head: FastAPI + SQLAlchemy ORM + redis.asyncio.

Written the way the system sysevents replaces did it: an ORM model of
``system_events``, a pool of 2-10 connections, single events cached 5
minutes and stats 30 seconds in Redis (invalidated on writes), offset paging
with an exact ``count(*)``, stats by ``GROUP BY``. Configured by
``SEED_DATABASE_URL``, ``SEED_REDIS_URL`` and ``SEED_PREFIX``; run with
``python bench/seed_app.py PORT [uvicorn options as JSON]``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import redis.asyncio as aioredis
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import BigInteger, DateTime, FetchedValue, String, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class SystemEvent(Base):
    __tablename__ = "system_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    event_type: Mapped[str] = mapped_column(String(50), index=True)
    severity: Mapped[str] = mapped_column(String(20), index=True)
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    source: Mapped[str | None] = mapped_column(String(100), nullable=True)
    timestamp: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class EventIn(BaseModel):
    event_type: str
    severity: str = "info"
    message: str
    details: dict[str, Any] | None = None
    source: str | None = None
    timestamp: datetime | None = None


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_type: str
    severity: str
    message: str
    details: dict[str, Any] | None
    source: str | None
    timestamp: datetime
    created_at: datetime


class Page(BaseModel):
    items: list[EventOut]
    total: int
    limit: int
    offset: int


url = os.environ["SEED_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
engine = create_async_engine(url, pool_size=2, max_overflow=8)
Session = async_sessionmaker(engine, expire_on_commit=False)
cache = aioredis.Redis.from_url(os.environ["SEED_REDIS_URL"])
PREFIX = os.environ["SEED_PREFIX"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await engine.dispose()
    await cache.aclose()


app = FastAPI(lifespan=lifespan)


async def session() -> AsyncIterator[AsyncSession]:
    async with Session() as s:
        yield s


Db = Annotated[AsyncSession, Depends(session)]


@app.post("/api/events", status_code=201, response_model=EventOut)
async def create(data: EventIn, db: Db) -> SystemEvent:
    event = SystemEvent(
        **data.model_dump(exclude={"timestamp"}), timestamp=data.timestamp or datetime.now(UTC)
    )
    db.add(event)
    await db.commit()
    await db.refresh(event)
    await cache.delete(f"{PREFIX}:stats")
    return event


@app.get("/api/events/stats")
async def stats(db: Db) -> Any:
    cached = await cache.get(f"{PREFIX}:stats")
    if cached:
        return json.loads(cached)
    now = datetime.now(UTC)
    total = await db.scalar(select(func.count()).select_from(SystemEvent))
    by_severity = dict(
        (
            await db.execute(
                select(SystemEvent.severity, func.count()).group_by(SystemEvent.severity)
            )
        ).all()  # type: ignore[arg-type]
    )
    by_type = dict(
        (
            await db.execute(
                select(SystemEvent.event_type, func.count()).group_by(SystemEvent.event_type)
            )
        ).all()  # type: ignore[arg-type]
    )
    last_hour = await db.scalar(
        select(func.count()).where(SystemEvent.timestamp >= now - timedelta(hours=1))
    )
    last_24h = await db.scalar(
        select(func.count()).where(SystemEvent.timestamp >= now - timedelta(days=1))
    )
    result = {
        "total": total,
        "by_severity": by_severity,
        "by_type": by_type,
        "last_hour": last_hour,
        "last_24h": last_24h,
    }
    await cache.set(f"{PREFIX}:stats", json.dumps(result), ex=30)
    return result


@app.get("/api/events/{event_id}", response_model=EventOut)
async def get_event(event_id: int, db: Db) -> Any:
    cached = await cache.get(f"{PREFIX}:event:{event_id}")
    if cached:
        return json.loads(cached)
    event = (await db.execute(select(SystemEvent).where(SystemEvent.id == event_id))).scalar()
    if event is None:
        raise HTTPException(404, "event not found")
    out = EventOut.model_validate(event)
    await cache.set(f"{PREFIX}:event:{event_id}", out.model_dump_json(), ex=300)
    return out


@app.get("/api/events", response_model=Page)
async def list_events(
    db: Db,
    event_type: str | None = None,
    severity: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    query = select(SystemEvent)
    if event_type:
        query = query.where(SystemEvent.event_type == event_type)
    if severity:
        query = query.where(SystemEvent.severity == severity)
    total = await db.scalar(select(func.count()).select_from(query.subquery()))
    rows = await db.execute(
        query.order_by(SystemEvent.timestamp.desc()).offset(offset).limit(limit)
    )
    return Page(
        items=[EventOut.model_validate(e) for e in rows.scalars()],
        total=total or 0,
        limit=limit,
        offset=offset,
    )


if __name__ == "__main__":
    options = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), lifespan="on", **options)
