"""Live tails on SQLite: a position is an event id; new rows are found by polling.

One process writes at a time and ids only grow, so every row committed after
a tail read up to id ``n`` has an id above ``n``: reading ``id > n`` in id
order misses nothing and repeats nothing. A write through this store wakes
its tails at once; writes by other processes on the same file are noticed
within ``tail_poll`` seconds, when the tail looks again.
"""

# ruff: noqa: S608 - SQL is built from this package's constants; every value is bound.

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from functools import partial

from sysevents.model import Event
from sysevents.query import EventFilter
from sysevents.tail import Tailed, bad_position

from .db import Database
from .rows import SELECT_LIST, event_of

STEP = 500
"""Rows read per look."""


def parse_position(after: str) -> int:
    """The id a position names, or ``InvalidEventError``."""
    if not (after.isascii() and after.isdigit() and len(after) <= 18):
        raise bad_position(after)
    return int(after)


def _last_id(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    return 0 if row is None else int(row[0])


def _after(conn: sqlite3.Connection, seen: int) -> list[Event]:
    rows = conn.execute(
        f"SELECT {SELECT_LIST} FROM events WHERE id > ? ORDER BY id LIMIT ?", (seen, STEP)
    )
    return [event_of(r) for r in rows]


class Wakers:
    """The tails waiting in this process, woken when the writer commits."""

    def __init__(self) -> None:
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def wake(self) -> None:
        """Wake every waiting tail (callable from any thread)."""
        for loop, event in list(self._waiting):
            with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
                loop.call_soon_threadsafe(event.set)

    async def wait(self, seconds: float) -> bool:
        """Wait for a commit, at most ``seconds``; whether one came."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        self._waiting.add(entry)
        try:
            async with asyncio.timeout(seconds):
                await entry[1].wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiting.discard(entry)


async def follow_rows(
    db: Database,
    wakers: Wakers,
    query: EventFilter,
    start: int | None,
    idle: float | None,
    poll: float,
    ensure_open: Callable[[], None],
) -> AsyncIterator[Tailed]:
    """New matching events after id ``start`` (``None``: from now on), in id order."""
    ensure_open()
    seen = await db.read(_last_id) if start is None else start
    quiet = 0.0
    while True:
        ensure_open()
        found = await db.read(partial(_after, seen=seen))
        for event in found:
            seen = event.id
            if query.matches(event):
                quiet = 0.0
                yield Tailed(event, str(seen))
        if len(found) == STEP:
            continue
        wait = poll if idle is None else min(poll, max(idle - quiet, 0.0))
        if await wakers.wait(wait):
            continue
        quiet += wait
        if idle is not None and quiet >= idle:
            quiet = 0.0
            yield Tailed(None, str(seen))
