"""The PostgreSQL store's writes: inserts placed in their months, updates and deletes.

Each function takes the pool and does one write of the store contract in
full: an insert creates a month's partition when the row has none (and tries
once more), a batch goes by COPY when it is large and its keys are new, an
update or delete takes the row's lock, keeps the month locator right and
writes its audit record in the same transaction (see ``sysevents.audit``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sysevents.audit import delete_record, update_record
from sysevents.errors import NotFoundError
from sysevents.model import Event, EventPatch, NewEvent
from sysevents.stores.base import check_caller

from . import sql
from .byid import by_id, needs_locator
from .ids import month_index
from .inserts import COPY_FROM, KeyTaken, copy_batch, insert_batch, insert_one
from .partitions import ensure_partitions
from .pool import NoPartition, PostgresPool
from .rows import event_rows

T = TypeVar("T")


async def placed(db: PostgresPool, months: set[int], store: Callable[[], Awaitable[T]]) -> T:
    """``store()``, once more after creating the partitions of ``months`` if one was missing."""
    try:
        return await store()
    except NoPartition:
        pass
    async with db.connection() as conn:
        await ensure_partitions(conn, months)
    return await store()


async def add_one(db: PostgresPool, new: NewEvent, caller: str, window: float) -> Event:
    """Store one event (``window``: seconds its idempotency key is remembered)."""
    if new.idempotency_key is not None:
        return (await _keyed(db, [new], caller, window))[0]

    async def one() -> Event:
        async with db.connection() as conn:
            return await insert_one(conn, new, caller)

    return await placed(db, {month_index(new.timestamp)}, one)


async def add_batch(
    db: PostgresPool, news: Sequence[NewEvent], caller: str, window: float
) -> list[Event]:
    """Store a batch in one transaction: by COPY when it is large and its keys are new."""
    keys = [n.idempotency_key for n in news if n.idempotency_key is not None]
    if len(news) >= COPY_FROM and len(set(keys)) == len(keys):

        async def copy() -> list[Event]:
            async with db.transaction() as conn:
                return await copy_batch(conn, news, caller, window)

        try:
            return await placed(db, _months(news), copy)
        except KeyTaken:
            pass  # a key is held already (a retried batch): the path below reads it
    if keys:
        return await _keyed(db, news, caller, window)

    async def insert() -> list[Event]:
        async with db.connection() as conn:  # one statement: atomic by itself
            return await insert_batch(conn, news, caller, window)

    return await placed(db, _months(news), insert)


async def _keyed(
    db: PostgresPool, news: Sequence[NewEvent], caller: str, window: float
) -> list[Event]:
    async def insert() -> list[Event]:
        # In a transaction: a key reused with another event rolls the batch back.
        async with (
            db.connection() as conn,
            conn.pipeline(),  # BEGIN rides with the INSERT
            conn.transaction(),
        ):
            return await insert_batch(conn, news, caller, window)

    return await placed(db, _months(news), insert)


async def update(db: PostgresPool, event_id: int, patch: EventPatch, actor: str | None) -> Event:
    """Apply ``patch`` (which changes something) to the event; ``NotFoundError`` if none."""
    months = {month_index(patch.timestamp)} if patch.timestamp is not None else set()

    async def change() -> Event:
        # The counts follow by a trigger (migration 0006), as for any UPDATE.
        async with db.transaction() as conn:
            old = await by_id(conn, event_id, sql.SELECT, " FOR UPDATE")
            if old is None:
                raise NotFoundError(event_id)
            before = old.event
            statement = sql.update_statement(event_id, before.timestamp, patch)
            assert statement is not None
            async with conn.cursor(row_factory=event_rows) as cur:
                await cur.execute(statement.sql, statement.params)
                after = await cur.fetchone()
            assert after is not None
            if after.timestamp != before.timestamp:
                if needs_locator(event_id, month_index(after.timestamp)):
                    await conn.execute(sql.LOCATE_AT, (event_id, after.timestamp))
                else:
                    await conn.execute(sql.FORGET_LOCATION, (event_id,))
            if actor is not None:
                await insert_one(conn, update_record(before, after, actor), check_caller(actor))
        return after

    return await placed(db, months, change)


async def delete(db: PostgresPool, event_id: int, actor: str | None) -> None:
    """Remove the event and forget its idempotency key; ``NotFoundError`` if none."""
    async with db.transaction() as conn:
        row = await by_id(conn, event_id, sql.DELETE, sql.RETURNING)
        if row is None:
            raise NotFoundError(event_id)
        gone = row.event
        if needs_locator(event_id, month_index(gone.timestamp)):
            await conn.execute(sql.FORGET_LOCATION, (event_id,))
        if gone.idempotency_key is not None:
            caller = row.extra["idempotency_caller"]
            await conn.execute(sql.FORGET_KEY, (caller, gone.idempotency_key, event_id))
        if actor is not None:
            await insert_one(conn, delete_record(gone, actor), check_caller(actor))


def _months(news: Sequence[NewEvent]) -> set[int]:
    return {month_index(n.timestamp) for n in news}
