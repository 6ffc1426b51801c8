"""Deadlines for slow and idle clients, on uvicorn's HTTP protocols.

uvicorn has no deadline for receiving a request: its keep-alive timer runs
only between requests and every byte resets it, so a client that connects and
sends nothing, or trickles its headers or body, holds a connection for ever.
The protocols here add two timers: the headers of each request must arrive
within ``header_timeout`` of the connection opening (or of the previous
answer), and its body within ``body_timeout`` of the headers. Past either, the
connection is closed.

They extend uvicorn's protocol classes through the hooks both share
(``connection_made``, ``data_received``, ``on_response_complete``,
``connection_lost``, and the request cycle's ``more_body``); the uvicorn
releases they are tested with are pinned in ``pyproject.toml``. They are
module-level classes, so that worker processes (``serve --workers``) import
them by name; a worker reads the timeouts from its ``SYSEVENTS_HTTP_*``
environment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import HttpOptions

logger = logging.getLogger("sysevents_http")

try:  # uvicorn[standard]
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - installed by the server extra
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


class _Timeouts:
    header = 10.0
    body = 30.0


def configure(options: HttpOptions) -> None:
    """Use the deadlines of ``options`` for the connections this process accepts from now on."""
    _Timeouts.header = options.header_timeout
    _Timeouts.body = options.body_timeout


class _Deadlines(asyncio.Protocol):
    """The deadline timers, mixed into a uvicorn HTTP protocol (see the module)."""

    _deadline: asyncio.TimerHandle | None = None
    _waiting_cycle: Any = None  # the cycle seen when the wait for headers began
    _reading_body = False
    cycle: Any
    transport: Any

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
        seconds = _Timeouts.header
        self._arm(seconds, f"no complete request headers within {seconds:g} s")

    def connection_made(self, transport: Any) -> None:
        """Start the wait for the first request's headers."""
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        """Once the headers are in, the body has its own deadline; a whole request, none."""
        super().data_received(data)
        cycle = self.cycle
        if cycle is None or cycle is self._waiting_cycle:
            return  # still reading the headers
        if cycle.more_body and not self._reading_body:
            self._reading_body = True
            seconds = _Timeouts.body
            self._arm(seconds, f"the request body took over {seconds:g} s")
        elif not cycle.more_body:
            self._waiting_cycle = cycle  # the whole request is in
            self._reading_body = False
            self._disarm()

    def on_response_complete(self) -> None:
        """The answer went out: the next request's headers are waited for anew."""
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        """No timer outlives its connection."""
        self._disarm()
        super().connection_lost(exc)


class DeadlineH11Protocol(_Deadlines, H11Protocol):
    """uvicorn's h11 protocol with the deadlines."""


if HttpToolsProtocol is not None:

    class DeadlineHttpToolsProtocol(_Deadlines, HttpToolsProtocol):
        """uvicorn's httptools protocol (the fast parser) with the deadlines."""


def protocol_class(choice: str) -> type[asyncio.Protocol]:
    """The protocol class for ``choice`` (``auto``, ``h11``, ``httptools``).

    A class rather than an import path: the lowest uvicorn supported takes
    only its own protocol names as strings, every release takes a class.
    """
    if choice == "h11" or (choice == "auto" and HttpToolsProtocol is None):
        return DeadlineH11Protocol
    return DeadlineHttpToolsProtocol


def _peer(protocol: Any) -> str:
    client = getattr(protocol, "client", None)
    return f"{client[0]}:{client[1]}" if client else "an unknown client"
