"""The repository protocol over the REST API: ``connect("http://host:port")``.

A service switches from writing to the database directly to going through the
API by changing a URL; answers and errors are the same as any other backend's.
"""

from __future__ import annotations

import asyncio
import json as json_module
import re
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from sysevents.errors import ConfigurationError, NotFoundError, StoreError, StoreUnavailableError
from sysevents.histogram import EventHistogram
from sysevents.model import Event, EventPage, EventPatch, EventStats, NewEvent
from sysevents.positions import POSITION_HEADER, lsn_text, lsn_value
from sysevents.query import EventFilter, EventQuery, QueryParams
from sysevents.retention import RetentionPolicy, RetentionReport
from sysevents.rules import is_event_id
from sysevents.settings import Settings, with_overrides
from sysevents.store import EventStore
from sysevents.tail import Tailed, bad_position
from sysevents.wire import error_of


class HttpEventRepository(EventStore):
    """Talks to a sysevents REST API; every ``EventRepository`` method is one request.

    ``base_url`` is the API's root (``http://host:port``; the settings'
    ``database_url``). The settings' ``timeout`` bounds each request; a server
    that cannot be reached, times out or answers 503 raises
    ``StoreUnavailableError``. Their ``api_key`` is sent as a bearer token.
    ``overrides`` change fields of the settings: ``HttpEventRepository(url,
    api_key=key)``.

    Read-your-writes: when the server reads from replicas, each write's answer
    carries its position (``Sysevents-Position``); every later read through a
    client of the same server, in this process (an emitter's writes
    included), presents the latest one, so the server answers from a replica
    that has replayed it, or from the primary.

    The server decides who the caller is, from the key: the ``caller`` of
    ``add`` and the ``actor`` of ``update``/``delete`` are not sent. It seals
    the events too (``GET /api/digests``): this store has no ``seals``.
    """

    remote = True

    def __init__(
        self,
        base_url: str | None = None,
        settings: Settings | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **overrides: Any,
    ) -> None:
        if base_url is not None:
            overrides["database_url"] = base_url
        settings = with_overrides(settings, overrides)
        self.base_url = settings.database_url.rstrip("/")
        self.timeout = settings.timeout
        self._headers = dict(headers or {})
        if settings.api_key is not None:
            self._headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpEventRepository:
        """A repository for ``settings.database_url``, with its ``timeout`` and ``api_key``."""
        return cls(settings=settings)

    async def open(self) -> None:
        """Create the HTTP client (connections open on first use)."""
        if self._client is None:
            try:
                self._client = httpx.AsyncClient(
                    base_url=self.base_url,
                    timeout=self.timeout,
                    headers=self._headers,
                    transport=self._transport,
                )
            except (httpx.InvalidURL, ValueError) as exc:
                raise ConfigurationError(f"not a usable API URL: {self.base_url!r}") from exc
        self._closed = False

    async def close(self) -> None:
        """Close the client; safe to call twice."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- the protocol -------------------------------------------------------------

    async def add(self, new: NewEvent, *, caller: str | None = None) -> Event:
        """Store one event (``POST /api/events``)."""
        body = await self._request("POST", "/api/events", json=_body(new))
        return _parse(Event, body)

    async def add_many(self, news: Sequence[NewEvent], *, caller: str | None = None) -> list[Event]:
        """Store several events, all or none (``POST /api/events/batch``)."""
        if not news:
            return []
        payload = {"events": [_body(new) for new in news]}
        body = await self._request("POST", "/api/events/batch", json=payload, batch=True)
        return _parse(_StoredBatch, body).events

    async def get(self, event_id: int) -> Event | None:
        """The event, or ``None`` (``GET /api/events/{id}``)."""
        if not is_event_id(event_id):
            self._ensure_open()
            return None
        try:
            body = await self._request("GET", f"/api/events/{event_id}", event_id=event_id)
        except NotFoundError:
            return None
        return _parse(Event, body)

    async def list(self, query: EventQuery | None = None) -> EventPage:
        """One page of matching events (``GET /api/events``)."""
        query = query or EventQuery()
        body = await self._request("GET", "/api/events", params=query.query_params())
        return _parse(EventPage, body)

    async def list_json(self, query: EventQuery | None = None, *, max_bytes: int = 0) -> bytes:
        """A page as JSON; one over ``max_bytes`` is asked for again with as many events as fit.

        The server's own page (cut by its ``max_page_bytes``) comes back as it
        is when it fits: only the server signs the cursor that ends a page.
        """
        query = query or EventQuery()
        page = await self.list(query)
        data = page.model_dump_json().encode()
        if not max_bytes or len(data) <= max_bytes or len(page.items) <= 1:
            return data
        room, fit = max_bytes - _PAGE_FRAME, 0
        for event in page.items:
            room -= len(event.model_dump_json()) + 1
            if room < 0:
                break
            fit += 1
        shorter = await self.list(query.model_copy(update={"limit": max(fit, 1)}))
        return shorter.model_dump_json().encode()

    async def update(self, event_id: int, patch: EventPatch, *, actor: str | None = None) -> Event:
        """Change the given fields (``PUT /api/events/{id}``)."""
        if not is_event_id(event_id):
            self._ensure_open()
            raise NotFoundError(event_id)
        body = await self._request(
            "PUT",
            f"/api/events/{event_id}",
            json=patch.model_dump(mode="json", exclude_unset=True),
            event_id=event_id,
        )
        return _parse(Event, body)

    async def delete(self, event_id: int, *, actor: str | None = None) -> None:
        """Remove the event (``DELETE /api/events/{id}``)."""
        if not is_event_id(event_id):
            self._ensure_open()
            raise NotFoundError(event_id)
        await self._request("DELETE", f"/api/events/{event_id}", event_id=event_id)

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        """Not over the API: the service applies its own policy (its ``retention`` setting)."""
        raise ConfigurationError(
            "the REST API applies retention itself (its SYSEVENTS_RETENTION setting); "
            "run `sysevents retention` against its database instead"
        )

    async def stats(self, query: EventFilter | None = None) -> EventStats:
        """Counts over matching events (``GET /api/events/stats``)."""
        params = EventFilter.query_params(query or EventFilter())
        body = await self._request("GET", "/api/events/stats", params=params)
        return _parse(EventStats, body)

    async def histogram(
        self, query: EventFilter | None = None, interval: str = "auto"
    ) -> EventHistogram:
        """Counts by severity per bucket (``GET /api/events/histogram``)."""
        params = EventFilter.query_params(query or EventFilter())
        params.append(("interval", interval))
        body = await self._request("GET", "/api/events/histogram", params=params)
        return _parse(EventHistogram, body)

    def follow(
        self,
        query: EventFilter | None = None,
        *,
        after: str | None = None,
        idle: float | None = None,
    ) -> AsyncIterator[Tailed]:
        """New matching events from ``GET /api/events/stream`` (Server-Sent Events).

        A dropped connection is reopened with ``Last-Event-ID``, so nothing is
        missed or repeated; the server's heartbeats come every ``idle``
        seconds (default 15) and are yielded as items without an event when
        ``idle`` is given.
        """
        if after is not None and not _POSITION.fullmatch(after):
            raise bad_position(after)  # the server tells apart the rest
        return self._follow(query or EventFilter(), after, idle)

    async def _follow(
        self, query: EventFilter, after: str | None, idle: float | None
    ) -> AsyncIterator[Tailed]:
        client = self._ensure_open()
        heartbeat = idle if idle is not None else _HEARTBEAT
        params: list[tuple[str, Any]] = [
            *EventFilter.query_params(query),
            ("heartbeat", f"{heartbeat:g}"),
        ]
        # A read waits at most for a few heartbeats: longer, the server is gone.
        timeout = httpx.Timeout(self.timeout, read=self.timeout + 3 * heartbeat)
        position, connected, pause = after, False, 0.1
        while True:
            headers = {} if position is None else {"Last-Event-ID": position}
            try:
                async with client.stream(
                    "GET",
                    "/api/events/stream",
                    params=httpx.QueryParams(list(params)),
                    headers=headers,
                    timeout=timeout,
                ) as response:
                    if response.status_code >= 300:
                        await response.aread()
                        raise _error(response, None, False)
                    connected, pause = True, 0.1
                    async for event_id, data in _server_sent(response.aiter_lines()):
                        position = event_id or position
                        if data is not None:
                            yield Tailed(_parse(Event, _json(data)), position or "")
                        elif idle is not None:
                            yield Tailed(None, position or "")
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                if not connected:
                    raise StoreUnavailableError(f"cannot follow {self.base_url}: {exc}") from exc
            self._ensure_open()
            await asyncio.sleep(pause)  # the stream ended or broke: resume where it was
            pause = min(pause * 2, 5.0)

    async def ping(self) -> None:
        """Check the API and its store answer (``GET /api/health/db``)."""
        await self._request("GET", "/api/health/db")

    # -- plumbing -------------------------------------------------------------------

    def _ensure_open(self) -> httpx.AsyncClient:
        if self._closed:
            raise StoreUnavailableError("the repository is closed")
        if self._client is None:
            raise StoreUnavailableError("the repository is not open: use `async with`")
        return self._client

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: QueryParams | None = None,
        event_id: int | None = None,
        batch: bool = False,
    ) -> Any:
        client = self._ensure_open()
        position = _written.get(self.base_url) if method == "GET" else None
        try:
            response = await client.request(
                method,
                path,
                json=json,
                params=httpx.QueryParams(list(params or [])),
                headers=None if position is None else {POSITION_HEADER: lsn_text(position)},
            )
        except httpx.TimeoutException as exc:
            raise StoreUnavailableError(f"{self.base_url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise StoreUnavailableError(f"cannot reach {self.base_url}: {exc}") from exc
        except httpx.HTTPError as exc:  # a bad encoding, too many redirects, ...
            raise StoreError(f"{method} {path}: {exc}") from exc
        if response.status_code >= 300:
            raise _error(response, event_id, batch)
        written = response.headers.get(POSITION_HEADER)
        if written is not None:
            _note(self.base_url, written)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise StoreError(f"{method} {path}: the answer is not JSON") from exc


M = TypeVar("M", bound=BaseModel)
_written: dict[str, int] = {}
"""The latest write position each server answered in this process."""
_written_lock = threading.Lock()


def _note(server: str, text: str) -> None:
    position = lsn_value(text)
    if position is not None:
        with _written_lock:
            if position > _written.get(server, -1):
                _written[server] = position


# Room for a page's own fields around its events: limit, offset, a cursor, total.
_PAGE_FRAME = 1024
_HEARTBEAT = 15.0
_POSITION = re.compile(r"[0-9A-Za-z._-]{1,64}")


async def _server_sent(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str | None]]:
    """The ``(id, data)`` of each Server-Sent Event; ``data`` is ``None`` for a heartbeat."""
    event_id: str | None = None
    data: list[str] = []
    block = False
    async for line in lines:
        if not line:
            if block:
                yield event_id, "\n".join(data) if data else None
            event_id, data, block = None, [], False
            continue
        block = True
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "id":
            event_id = value


def _json(text: str) -> Any:
    try:
        return json_module.loads(text)
    except ValueError as exc:
        raise StoreError("the stream sent an event that is not JSON") from exc


class _StoredBatch(BaseModel):
    events: list[Event]


def _body(new: NewEvent) -> dict[str, Any]:
    """The fields given for ``new``, and only those.

    The server fills the defaults, and compares only the given fields when an
    idempotency key is replayed, as every store does.
    """
    return new.model_dump(mode="json", exclude_unset=True)


def _parse(model: type[M], body: Any) -> M:
    """The answer as ``model``; an answer of another shape is a ``StoreError``."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise StoreError(f"the API answered with an unexpected {model.__name__}: {exc}") from exc


def _error(response: httpx.Response, event_id: int | None, batch: bool) -> Exception:
    """The library error for an error response (problem details, RFC 9457)."""
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    problem.setdefault("detail", response.reason_phrase)
    request = response.request
    return error_of(
        response.status_code,
        problem,
        what=f"{request.method} {request.url.path}",
        event_id=event_id,
        batch=batch,
    )
