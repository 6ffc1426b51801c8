"""The pool keeps a share for writes: reads, however many, never take its last connections."""

from __future__ import annotations

import asyncio

import pytest

from sysevents import Settings, StoreUnavailableError
from sysevents.errors import ConfigurationError
from sysevents.stores.postgres.pool import PostgresPool
from tests.waiting import eventually


async def test_reads_never_take_the_write_reserve(empty_postgres_url: str) -> None:
    db = PostgresPool(empty_postgres_url, min_size=0, max_size=3, timeout=5.0, write_reserve=1)
    release = asyncio.Event()

    async def hold() -> None:
        async with db.connection(read=True):
            await release.wait()

    try:
        holders = [asyncio.create_task(hold()) for _ in range(2)]
        await eventually(lambda: db.reads_in_use == 2, "two reads hold their share")
        # A third read waits for its turn...
        third = asyncio.create_task(_read(db))
        await eventually(lambda: db.reads_waiting == 1, "the third read waits")
        # ...while a write gets a connection at once: the reserve is theirs.
        async with db.connection() as conn:
            await conn.execute("SELECT 1")
        assert db.waits.longest_write < 0.5
        assert not third.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(*holders, third), 5)
        assert (db.reads_in_use, db.reads_waiting) == (0, 0)
    finally:
        await db.close()


async def test_a_read_beyond_its_share_fails_like_an_empty_pool(empty_postgres_url: str) -> None:
    db = PostgresPool(empty_postgres_url, min_size=0, max_size=2, timeout=5.0, write_reserve=1)
    try:
        async with db.connection(read=True):
            db.timeout = 0.3  # for the next caller: the holder keeps its own 5 s
            with pytest.raises(StoreUnavailableError, match="couldn't get a connection"):
                await _read(db)
            assert db.reads_waiting == 0
    finally:
        await db.close()


async def test_a_read_waiting_for_its_share_goes_on_when_one_ends(empty_postgres_url: str) -> None:
    db = PostgresPool(empty_postgres_url, min_size=0, max_size=2, timeout=5.0, write_reserve=1)
    try:
        release = asyncio.Event()

        async def hold() -> None:
            async with db.connection(read=True):
                await release.wait()

        holder = asyncio.create_task(hold())
        await eventually(lambda: db.reads_in_use == 1, "one read holds the share")
        second = asyncio.create_task(_read(db))
        await eventually(lambda: db.reads_waiting == 1, "the second read waits")
        release.set()
        await asyncio.wait_for(asyncio.gather(holder, second), 5)
        assert db.waits.longest_read > 0
    finally:
        await db.close()


async def test_reads_keep_one_connection_whatever_the_reserve(empty_postgres_url: str) -> None:
    db = PostgresPool(empty_postgres_url, min_size=0, max_size=1, timeout=1.0, write_reserve=5)
    try:
        assert db.read_share == 1
        await _read(db)
    finally:
        await db.close()


def test_the_reserve_is_a_setting() -> None:
    assert Settings().pool_write_reserve == 2
    assert Settings(pool_write_reserve=0).pool_write_reserve == 0
    with pytest.raises(ValueError, match="pool_write_reserve"):
        Settings(pool_write_reserve=-1)
    with pytest.raises(ConfigurationError, match="pool_write_reserve"):
        Settings.from_env({"SYSEVENTS_POOL_WRITE_RESERVE": "x"})


async def _read(db: PostgresPool) -> None:
    async with db.connection(read=True) as conn:
        await conn.execute("SELECT 1")
