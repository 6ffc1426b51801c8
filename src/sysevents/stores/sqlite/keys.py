"""API keys and the file's own secrets, in the tables ``api_keys`` and ``secrets``."""

# ruff: noqa: S608 - SQL is built from this package's constants; every value is bound.

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from sysevents.errors import ConflictError, KeyNotFoundError
from sysevents.keys import ApiKey, Scope, StoredKey, check_name, new_key

from .db import Database
from .rows import from_micros, micros

_COLUMNS = "key_id, name, scopes, digest, created_at, expires_at, revoked_at"


def _time(us: int | None) -> datetime | None:
    return None if us is None else from_micros(us)


def _stored(row: tuple[Any, ...]) -> StoredKey:
    key_id, name, scopes, digest, created_at, expires_at, revoked_at = row
    key = ApiKey(
        name,
        key_id,
        frozenset(Scope(s) for s in scopes.split(",")),
        from_micros(created_at),
        _time(expires_at),
        _time(revoked_at),
    )
    return StoredKey(key, bytes(digest))


class SqliteKeyStore:
    """API keys in the file, looked up by id through the primary key."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_key(
        self, name: str, scopes: frozenset[Scope], expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """A new key; its text is returned once and kept nowhere."""
        check_name(name)
        text, key_id, digest = new_key()
        row = (
            key_id,
            name,
            ",".join(sorted(s.value for s in scopes)),
            digest,
            micros(datetime.now(UTC)),
            None if expires_at is None else micros(expires_at),
            None,
        )

        def create(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)
            except sqlite3.IntegrityError:
                raise ConflictError(f"a key named {name!r} exists already") from None

        await self._db.write(create)
        return _stored(row).key, text

    async def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        rows = await self._db.read(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, name"
            ).fetchall()
        )
        return [_stored(row).key for row in rows]

    async def revoke_key(self, name: str) -> ApiKey:
        """Revoke the key named ``name`` (once: revoking again changes nothing)."""
        now = micros(datetime.now(UTC))

        def revoke(conn: sqlite3.Connection) -> Any:
            conn.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE name = ?",
                (now, name),
            )
            return conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE name = ?", (name,)
            ).fetchone()

        row = await self._db.write(revoke)
        if row is None:
            raise KeyNotFoundError(name)
        return _stored(row).key

    async def find_key(self, key_id: str) -> StoredKey | None:
        """The key with this id."""
        row = await self._db.read(
            lambda c: c.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        )
        return None if row is None else _stored(row)

    async def has_keys(self) -> bool:
        """Whether any key was created."""
        row = await self._db.read(
            lambda c: c.execute("SELECT EXISTS (SELECT 1 FROM api_keys)").fetchone()
        )
        return bool(row and row[0])


async def file_secret(db: Database, name: str) -> str:
    """A secret the file keeps (made when its tables were)."""
    row = await db.read(
        lambda c: c.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
    )
    assert row is not None, "the schema makes the cursor secret"
    return str(row[0])
