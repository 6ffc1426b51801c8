"""``sysevents serve``: the API under uvicorn, with deadlines for slow and idle clients.

uvicorn has no deadline for receiving a request: its keep-alive timer runs
only between requests and every byte resets it, so a client that connects and
sends nothing, or trickles its headers or body, holds a connection for ever.
:func:`deadline_protocol` wraps uvicorn's HTTP protocol class with two timers:
the headers of each request must arrive within ``header_timeout`` of the
connection opening (or of the previous answer), and its body within
``body_timeout`` of the headers. Past either, the connection is closed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

import sysevents
from sysevents import ConfigurationError, Settings, SyseventsError

from .app import create_app
from .config import HttpOptions

logger = logging.getLogger("sysevents_http")


def deadline_protocol(base: type[asyncio.Protocol], options: HttpOptions) -> type[asyncio.Protocol]:
    """``base`` (one of uvicorn's HTTP protocols) with the header and body deadlines."""
    header_timeout = options.header_timeout
    body_timeout = options.body_timeout

    class DeadlineProtocol(base):  # type: ignore[misc,valid-type]
        """A uvicorn HTTP protocol that closes connections slower than the deadlines."""

        _deadline: asyncio.TimerHandle | None = None
        _waiting_cycle: Any = None  # the cycle seen when the wait for headers began
        _reading_body = False

        def _arm(self, seconds: float, why: str) -> None:
            self._disarm()
            self._deadline = asyncio.get_running_loop().call_later(seconds, self._expire, why)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self, why: str) -> None:
            self._deadline = None
            transport = getattr(self, "transport", None)
            if transport is not None and not transport.is_closing():
                logger.info("closing a connection from %s: %s", _peer(self), why)
                transport.close()

        def _await_headers(self) -> None:
            self._waiting_cycle = self.cycle
            self._reading_body = False
            self._arm(header_timeout, f"no complete request headers within {header_timeout:g} s")

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_headers()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle
            if cycle is None or cycle is self._waiting_cycle:
                return  # still reading the headers
            if cycle.more_body and not self._reading_body:
                self._reading_body = True
                self._arm(body_timeout, f"the request body took over {body_timeout:g} s")
            elif not cycle.more_body:
                self._waiting_cycle = cycle  # the whole request is in
                self._reading_body = False
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    DeadlineProtocol.__name__ = f"Deadline{base.__name__}"
    return DeadlineProtocol


def _peer(protocol: Any) -> str:
    client = getattr(protocol, "client", None)
    return f"{client[0]}:{client[1]}" if client else "an unknown client"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


async def _any_key(settings: Settings) -> bool | None:
    """Whether a key exists (settings or store); ``None`` if the store cannot say now."""
    if settings.api_keys is not None and settings.api_keys.get_secret_value().strip():
        return True
    if settings.database_url.startswith("memory:"):
        return False  # the memory store starts with none
    repo = sysevents.connect(settings=settings)
    keys = repo.keys
    if keys is None:
        return False
    try:
        async with repo, asyncio.timeout(settings.timeout + 1):
            return await keys.has_keys()
    except (SyseventsError, TimeoutError):
        return None


def secured(settings: Settings, host: str) -> Settings:
    """``settings`` for serving on ``host``: beyond this machine, keys are required.

    With ``auth`` left to ``auto`` on an address other machines reach, the
    service refuses to start while no key exists, and says how to make one.
    ``auth=off`` is obeyed, with a warning.
    """
    if is_loopback(host):
        return settings
    if settings.auth == "off":
        logger.warning(
            "serving on %s with auth off: anyone who can reach it can read, change and "
            "delete every event",
            host,
        )
        return settings
    if settings.auth == "auto" and asyncio.run(_any_key(settings)) is False:
        raise ConfigurationError(
            f"refusing to serve on {host} with no API key: create one with "
            "`sysevents keys create --name admin --scope read,write,admin` (or give keys in "
            "SYSEVENTS_API_KEYS), or pass --auth off to serve without keys"
        )
    return settings.updated(auth="required")


def run(settings: Settings, *, host: str, port: int, options: HttpOptions | None = None) -> None:
    """Serve the API for ``settings`` on ``host:port`` until interrupted.

    A URL no backend serves, a missing extra, or an open service beyond this
    machine is a ``ConfigurationError`` here, before the server starts.
    """
    import uvicorn
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    options = options or HttpOptions.from_env()
    sysevents.connect(settings=settings)  # builds, does not open: checks the URLs
    settings = secured(settings, host)
    base = import_from_string(HTTP_PROTOCOLS["auto"])
    uvicorn.run(
        create_app(settings, options=options),
        host=host,
        port=port,
        log_level="info",
        lifespan="on",
        http=deadline_protocol(base, options),
        timeout_keep_alive=max(1, round(options.keep_alive_timeout)),
        limit_concurrency=options.max_connections,
    )
