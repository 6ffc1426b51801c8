"""API keys and the database's own secrets in PostgreSQL (tables of migration 0004)."""

# ruff: noqa: S608

from __future__ import annotations

from datetime import UTC, datetime

from sysevents.errors import ConflictError, KeyNotFoundError, StoreUnavailableError
from sysevents.keys import ApiKey, Scope, StoredKey, check_name, new_key

from .pool import Duplicate, PostgresPool, Row

_COLUMNS = "key_id, name, scopes, digest, created_at, expires_at, revoked_at"


def _stored(row: Row) -> StoredKey:
    key_id, name, scopes, digest, created_at, expires_at, revoked_at = row
    key = ApiKey(
        name, key_id, frozenset(Scope(s) for s in scopes), created_at, expires_at, revoked_at
    )
    return StoredKey(key, bytes(digest))


class PostgresKeyStore:
    """API keys in ``sysevents_api_keys``, looked up by id with one indexed read."""

    def __init__(self, db: PostgresPool) -> None:
        self._db = db

    async def create_key(
        self, name: str, scopes: frozenset[Scope], expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """A new key; its text is returned once and kept nowhere."""
        check_name(name)
        text, key_id, digest = new_key()
        try:
            async with self._db.connection() as conn:
                cur = await conn.execute(
                    "INSERT INTO sysevents_api_keys (key_id, name, scopes, digest, expires_at) "
                    "VALUES (%s, %s, %s, %s, %s) RETURNING " + _COLUMNS,
                    (key_id, name, sorted(s.value for s in scopes), digest, expires_at),
                )
                row = await cur.fetchone()
        except Duplicate:
            raise ConflictError(f"a key named {name!r} exists already") from None
        assert row is not None
        return _stored(row).key, text

    async def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT " + _COLUMNS + " FROM sysevents_api_keys ORDER BY created_at, name"
            )
            return [_stored(row).key for row in await cur.fetchall()]

    async def revoke_key(self, name: str) -> ApiKey:
        """Revoke the key named ``name`` (once: revoking again changes nothing)."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "UPDATE sysevents_api_keys SET revoked_at = coalesce(revoked_at, %s) "
                "WHERE name = %s RETURNING " + _COLUMNS,
                (datetime.now(UTC), name),
            )
            row = await cur.fetchone()
        if row is None:
            raise KeyNotFoundError(name)
        return _stored(row).key

    async def find_key(self, key_id: str) -> StoredKey | None:
        """The key with this id."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT " + _COLUMNS + " FROM sysevents_api_keys WHERE key_id = %s", (key_id,)
            )
            row = await cur.fetchone()
        return None if row is None else _stored(row)

    async def has_keys(self) -> bool:
        """Whether any key was created."""
        async with self._db.connection() as conn:
            cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM sysevents_api_keys)")
            row = await cur.fetchone()
        return bool(row and row[0])


async def database_secret(db: PostgresPool, name: str) -> str:
    """A secret ``sysevents migrate`` made and keeps in ``sysevents_secrets``."""
    async with db.connection() as conn:
        cur = await conn.execute("SELECT value FROM sysevents_secrets WHERE name = %s", (name,))
        row = await cur.fetchone()
    if row is None:
        raise StoreUnavailableError(
            f"the database keeps no {name} secret: run `sysevents migrate --database-url ...`"
        )
    return str(row[0])
