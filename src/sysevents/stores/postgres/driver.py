"""The driver's side: connection strings, error translation, and connections of their own.

Every psycopg error becomes a sysevents error in :func:`translated` (the
pool's connections use it; code that must react to one condition inside a
block wraps the block in it). The conditions a store reacts to have errors of
their own here: :class:`MissingTable`, :class:`NoPartition`, :class:`Duplicate`
and :class:`LockTimeout`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, LiteralString
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolClosed

from sysevents.errors import (
    AppendOnlyError,
    ConfigurationError,
    StoreError,
    StoreUnavailableError,
)
from sysevents.redact import redact_url

Row = tuple[Any, ...]
"""A row as psycopg returns it by default."""
Connection = psycopg.AsyncConnection[Row]
"""A pooled connection."""


def conninfo(url: str) -> str:
    """``url`` as libpq takes it, checked: ``postgresql+psycopg://`` loses its driver suffix.

    A URL libpq cannot read is a ``ConfigurationError`` that never repeats the
    URL (libpq's own message would quote the password).
    """
    parts = urlsplit(url)
    if "+" in parts.scheme:
        url = urlunsplit(parts._replace(scheme=parts.scheme.partition("+")[0]))
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ConfigurationError(
            f"the database URL {redact_url(url)} cannot be read: check its %-escapes "
            "(a literal % in a password is written %25)"
        ) from None
    for port in str(params.get("port", "")).split(","):
        if port and not port.isdigit():
            raise ConfigurationError(
                f"the database URL {redact_url(url)} has a port that is not a number"
            )
    return url


APPEND_ONLY_STATE = "SEA01"
"""What the append-only trigger raises (migration 0012)."""


class MissingTable(StoreUnavailableError):
    """A table or function the statement needs is missing (a database nobody migrated)."""


class NoPartition(StoreError):
    """A row found no partition to go to (its month has none yet)."""


class Duplicate(StoreError):
    """A row broke a unique constraint."""


class LockTimeout(StoreError):
    """A lock was not granted within the statement's ``lock_timeout``."""


@contextmanager
def translated(timeout: float | None = None) -> Iterator[None]:
    """Run a block whose psycopg errors come out as sysevents errors (the only translation).

    ``timeout`` (seconds) names the bound in the message of a ``TimeoutError``.
    """
    try:
        yield
    except (PoolClosed, psycopg.Error, TimeoutError, OSError) as exc:
        raise _translation(exc, timeout) from exc


def _translation(exc: BaseException, timeout: float | None) -> StoreError | AppendOnlyError:
    """The sysevents error a driver error (or a timeout) stands for."""
    if isinstance(exc, PoolClosed):
        return StoreUnavailableError("the repository is closed")
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return LockTimeout(f"PostgreSQL: {exc}")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailableError(f"PostgreSQL is unavailable: {exc}")
    if isinstance(exc, TimeoutError):
        within = f" within {timeout:g} s" if timeout is not None else " in time"
        return StoreUnavailableError(f"PostgreSQL did not answer{within}")
    if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedFunction):
        # A database nobody migrated: unusable until someone does, and the
        # one thing to say is how.
        return MissingTable(
            "the sysevents tables are missing or out of date in this database: "
            "run `sysevents migrate --database-url ...`"
        )
    if isinstance(exc, psycopg.Error) and exc.sqlstate == APPEND_ONLY_STATE:
        return AppendOnlyError()
    if isinstance(exc, psycopg.errors.CheckViolation) and "no partition" in str(exc):
        return NoPartition(f"PostgreSQL: {exc}")
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return Duplicate(f"PostgreSQL: {exc}")
    if isinstance(exc, psycopg.Error):
        return StoreError(f"PostgreSQL failed: {type(exc).__name__}: {exc}")
    return StoreUnavailableError(f"PostgreSQL is unreachable: {exc}")  # an OSError


async def connect(url: str, connect_timeout: float, application: str) -> Connection:
    """A connection of its own (not the pool's), in autocommit; errors translated."""
    with translated(connect_timeout):
        return await psycopg.AsyncConnection.connect(
            conninfo(url),
            autocommit=True,
            connect_timeout=max(2, math.ceil(connect_timeout)),
            application_name=application,
        )


async def notifications(
    url: str, channel: LiteralString, connect_timeout: float
) -> AsyncIterator[None]:
    """Listen on ``channel`` on a connection of its own: once when listening, then per NOTIFY.

    Ends with a sysevents error when the connection fails.
    """
    conn = await connect(url, connect_timeout, "sysevents-tail")
    with translated():
        async with conn:
            await conn.execute("LISTEN " + channel)
            yield
            async for _ in conn.notifies():
                yield
