"""The health routes: the service, and its store."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

from litestar import Response, route
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK

import sysevents
from sysevents import StoreUnavailableError, SyseventsError
from sysevents_http.problems import unavailable
from sysevents_http.schemas import Backlog, DatabaseHealth, Health, ReplicaHealth
from sysevents_http.service import Service

from .params import READ, SERVER_ERROR, UNAVAILABLE

HEALTH_DB_TIMEOUT = 0.9
"""Seconds the store has to answer a health check: load balancers give a second or so."""


@route(
    http_method=READ,
    path="/api/health",
    summary="Service health",
    description="Always 200 while the process serves requests; never touches the store.",
    tags=["health"],
    responses={**SERVER_ERROR},
)
async def health(service: NamedDependency[Service]) -> Health:
    """The service is up."""
    events = service.events
    events.note_health("health_check", "ok", {"uptime": events.uptime})
    cache = service.store.cache_stats()
    return Health(
        version=sysevents.__version__,
        uptime=events.uptime,
        cache=None if cache is None else dataclasses.asdict(cache),
    )


@route(
    http_method=READ,
    path="/api/health/db",
    summary="Store health",
    description="Pings the store: 200 with the round-trip latency, or 503 when it is down. "
    "Answers within a second in every case.",
    tags=["health"],
    responses={**UNAVAILABLE, **SERVER_ERROR},
)
async def database_health(service: NamedDependency[Service]) -> Response[DatabaseHealth]:
    """The store answers."""
    started = time.perf_counter()
    try:
        await service.store.ping_within(HEALTH_DB_TIMEOUT)
    except StoreUnavailableError as exc:
        service.events.note_health("db_health_check", "down", {"error": str(exc)})
        return unavailable(f"the event store is unavailable: {exc}")  # type: ignore[return-value]
    latency = round((time.perf_counter() - started) * 1000, 3)
    service.events.note_health("db_health_check", "ok", {"latency_ms": latency})
    backlog = None
    left = HEALTH_DB_TIMEOUT - (time.perf_counter() - started)
    with contextlib.suppress(SyseventsError, TimeoutError):  # the ping is the verdict
        async with asyncio.timeout(max(left, 0.01)):
            found = await service.store.backlog()
            if found is not None:
                backlog = Backlog(**dataclasses.asdict(found))
    replicas = [
        ReplicaHealth(name=r.name, lag_seconds=r.lag, in_use=r.usable)
        for r in service.store.replicas()
    ]
    health = DatabaseHealth(latency_ms=latency, backlog=backlog, replicas=replicas)
    return Response(health, status_code=HTTP_200_OK)


HEALTH_ROUTES = [health, database_health]
"""Both health handlers."""
