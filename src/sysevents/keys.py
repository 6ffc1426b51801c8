"""API keys: their form, their hashes, their scopes, and the stores that keep them.

A key reads ``se_<id>_<secret>``: the id (12 hex digits) is public and finds the
key with one indexed read; the secret (256 random bits) is never stored, only
its SHA-256, compared in constant time. A key has a name, a set of scopes
(``read``, ``write``, ``admin``; none implies another), an optional expiry, and
can be revoked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal, Protocol, runtime_checkable

from pydantic import AfterValidator, Field

from .errors import ConfigurationError, ConflictError, KeyNotFoundError
from .rules import check_label

KEY_PREFIX = "se_"
"""The prefix of every key, so that a leaked key is recognisable (secret scanners)."""
_ID_HEX = 12
_KEY = re.compile(r"^se_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
MAX_NAME_LENGTH = 50
"""The longest key name, in characters."""


class Scope(StrEnum):
    """What a key may do. No scope implies another."""

    READ = "read"
    """Every GET under ``/api/events``."""
    WRITE = "write"
    """Recording events (``POST /api/events``, batches, ingest)."""
    ADMIN = "admin"
    """Changing and deleting events, and managing keys."""


def parse_scopes(text: str | Iterable[str]) -> frozenset[Scope]:
    """Scopes from ``read,write`` (or ``read+write``, or a list); an unknown one is an error."""
    names = re.split(r"[,+\s]+", text) if isinstance(text, str) else list(text)
    try:
        scopes = frozenset(Scope(n.strip().lower()) for n in names if n.strip())
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        raise ConfigurationError(f"unknown scope in {text!r}: the scopes are {known}") from None
    if not scopes:
        raise ConfigurationError("a key needs at least one scope (read, write, admin)")
    return scopes


def parse_duration(text: str) -> timedelta:
    """``90d``, ``36h``, ``52w`` (and ``30m``) as a duration."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([mhdw])\s*", text)
    if not match:
        raise ConfigurationError(f"not a duration: {text!r} (use e.g. 36h, 90d or 52w)")
    amount, unit = int(match[1]), match[2]
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[unit]: amount})


def expiry_in(text: str, now: datetime | None = None) -> datetime:
    """When a key made now expires, ``text`` (``90d``...) from now; past year 9999 is an error."""
    try:
        return (now or datetime.now(UTC)) + parse_duration(text)
    except OverflowError:
        raise ConfigurationError(f"{text!r} from now is past the year 9999") from None


def name_rules(name: str) -> str:
    """A key name: 1–50 characters, no control characters, no ``:`` or ``,``."""
    check_label(name)
    if len(name) > MAX_NAME_LENGTH or ":" in name or "," in name:
        raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters, without ':' or ','")
    return name


KeyName = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(name_rules)
]
"""A key name, as a pydantic type (for request bodies)."""


def check_name(name: str) -> str:
    """``name`` if it is a valid key name, else a ``ConfigurationError`` saying why."""
    try:
        return name_rules(name)
    except ValueError as exc:
        raise ConfigurationError(f"key name {name[:60]!r} {exc}") from None


def digest(secret: str) -> bytes:
    """The stored form of a key's secret."""
    return hashlib.sha256(secret.encode()).digest()


def new_key() -> tuple[str, str, bytes]:
    """A fresh key: ``(key, id, digest of its secret)``."""
    key_id = secrets.token_hex(_ID_HEX // 2)
    secret = secrets.token_urlsafe(32)
    return f"{KEY_PREFIX}{key_id}_{secret}", key_id, digest(secret)


def split_key(key: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else ``None``."""
    match = _KEY.match(key.strip())
    return (match[1], match[2]) if match else None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What is known of a key, its secret aside; what ``keys list`` shows."""

    name: str
    key_id: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def usable(self, now: datetime | None = None) -> bool:
        """Neither revoked nor expired."""
        now = now or datetime.now(UTC)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as a store keeps it: what is known of it, and the digest of its secret."""

    key: ApiKey
    digest: bytes


FailReason = Literal["missing", "malformed", "unknown", "wrong secret", "revoked", "expired"]
"""Why a key did not authenticate (recorded, never told to the caller)."""


def verify(stored: StoredKey | None, secret: str) -> ApiKey | None:
    """The key if ``secret`` is its secret and it is usable; else ``None``.

    The comparison takes the same time whether or not a key was found.
    """
    return check(stored, secret)[0]


def check(stored: StoredKey | None, secret: str) -> tuple[ApiKey | None, FailReason | None]:
    """``(key, None)`` if ``secret`` is the secret of ``stored`` and it is usable, else why not.

    The comparison takes the same time whether or not a key was found.
    """
    expected = stored.digest if stored is not None else b"\0" * 32
    matches = hmac.compare_digest(expected, digest(secret))
    if stored is None:
        return None, "unknown"
    if not matches:
        return None, "wrong secret"
    if stored.key.revoked_at is not None:
        return None, "revoked"
    if not stored.key.usable():
        return None, "expired"
    return stored.key, None


@runtime_checkable
class KeyStore(Protocol):
    """Where API keys are kept: the memory store's dict, or a table of the database."""

    async def create_key(
        self, name: str, scopes: frozenset[Scope], expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """A new key and, shown this once, its text; ``ConflictError`` if the name is taken."""

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""

    async def revoke_key(self, name: str) -> ApiKey:
        """Revoke the key named ``name``; ``NotFoundError`` if there is none."""

    async def find_key(self, key_id: str) -> StoredKey | None:
        """The key with this id, usable or not."""

    async def has_keys(self) -> bool:
        """Whether any key was ever created (then the API requires one)."""


class MemoryKeyStore:
    """Keys in a dict: for the memory backend, and for tests."""

    def __init__(self) -> None:
        self._keys: dict[str, StoredKey] = {}  # by id

    async def create_key(
        self, name: str, scopes: frozenset[Scope], expires_at: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """A new key; its text is returned once and kept nowhere."""
        check_name(name)
        if any(s.key.name == name for s in self._keys.values()):
            raise ConflictError(f"a key named {name!r} exists already")
        text, key_id, secret_digest = new_key()
        key = ApiKey(name, key_id, frozenset(scopes), datetime.now(UTC), expires_at)
        self._keys[key_id] = StoredKey(key, secret_digest)
        return key, text

    async def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        return sorted((s.key for s in self._keys.values()), key=lambda k: k.created_at)

    async def revoke_key(self, name: str) -> ApiKey:
        """Revoke the key named ``name``."""
        for key_id, stored in self._keys.items():
            if stored.key.name == name:
                key = stored.key
                if key.revoked_at is None:
                    key = ApiKey(
                        key.name,
                        key.key_id,
                        key.scopes,
                        key.created_at,
                        key.expires_at,
                        datetime.now(UTC),
                    )
                    self._keys[key_id] = StoredKey(key, stored.digest)
                return key
        raise KeyNotFoundError(name)

    async def find_key(self, key_id: str) -> StoredKey | None:
        """The key with this id."""
        return self._keys.get(key_id)

    async def has_keys(self) -> bool:
        """Whether any key was created."""
        return bool(self._keys)


def static_keys(text: str) -> dict[str, StoredKey]:
    """Keys given in a setting: comma-separated ``NAME:SCOPE+SCOPE:KEY``.

    For stateless deployments: the keys are given in full by whoever deploys,
    and hashed here; they cannot be revoked but by changing the setting.
    """
    found: dict[str, StoredKey] = {}
    names: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            name, scopes, key = part.split(":", 2)
        except ValueError:
            raise ConfigurationError(
                "SYSEVENTS_API_KEYS holds NAME:SCOPE+SCOPE:KEY entries, separated by commas"
            ) from None
        split = split_key(key)
        if split is None:
            raise ConfigurationError(
                f"the key of {name!r} in SYSEVENTS_API_KEYS is not a sysevents key "
                "(create one with `sysevents keys create`)"
            )
        if check_name(name) in names:
            raise ConfigurationError(f"two keys named {name!r} in SYSEVENTS_API_KEYS")
        names.add(name)
        key_id, secret = split
        api_key = ApiKey(name, key_id, parse_scopes(scopes), datetime(2000, 1, 1, tzinfo=UTC))
        found[key_id] = StoredKey(api_key, digest(secret))
    return found


async def clashing_name(static: dict[str, StoredKey], store: KeyStore | None) -> None:
    """Refuse a name given to a key in settings and to an unrevoked key of the store.

    A caller is its key's id, but people read names: two keys answering to one
    name would make the audit trail ambiguous. One line names the clash.
    """
    if store is None or not static:
        return
    names = {s.key.name for s in static.values()}
    for key in await store.list_keys():
        if key.revoked_at is None and key.name in names:
            raise ConfigurationError(
                f"two keys named {key.name!r}: one in SYSEVENTS_API_KEYS and one in the store "
                f"(revoke it with `sysevents keys revoke {key.name}`, or rename the other)"
            )


@dataclass
class KeyRing:
    """How a service checks keys: those given in settings, then a store's, briefly cached.

    A lookup is remembered for ``ttl`` seconds (a revoked key stops working on
    every replica within that time plus one request); unknown ids are
    remembered too, so a flood of made-up keys costs one read per id and ``ttl``.
    """

    store: KeyStore | None
    static: dict[str, StoredKey] = dataclass_field(default_factory=dict)
    ttl: float = 2.0
    _cache: dict[str, tuple[float, StoredKey | None]] = dataclass_field(default_factory=dict)
    _any: tuple[float, bool] | None = None
    _lock: asyncio.Lock = dataclass_field(default_factory=asyncio.Lock)

    async def authenticate(self, key: str) -> ApiKey | None:
        """The usable key ``key`` stands for; ``None`` if malformed, unknown, revoked or expired."""
        return (await self.identify(key))[0]

    async def identify(self, key: str) -> tuple[ApiKey | None, FailReason | None]:
        """The usable key ``key`` stands for, or why it is not one."""
        split = split_key(key)
        if split is None:
            verify(None, "")  # the same work as a failed comparison
            return None, "malformed"
        key_id, secret = split
        return check(await self._find(key_id), secret)

    def refuse_static_name(self, name: str) -> None:
        """``ConflictError`` if a key given in settings has this name (a new one may not)."""
        if any(s.key.name == name for s in self.static.values()):
            raise ConflictError(f"a key named {name!r} is given in SYSEVENTS_API_KEYS")

    async def still_usable(self, key_id: str) -> bool:
        """Whether the key is still neither revoked nor expired (looked up again after ``ttl``)."""
        stored = await self._find(key_id)
        return stored is not None and stored.key.usable()

    async def _find(self, key_id: str) -> StoredKey | None:
        if key_id in self.static:
            return self.static[key_id]
        if self.store is None:
            return None
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        found = await self.store.find_key(key_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_id] = (now, found)
        return found

    def forget(self, key_id: str | None = None) -> None:
        """Drop what is remembered of ``key_id`` (all keys: ``None``), after a change here."""
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)
        self._any = None

    async def any_keys(self) -> bool:
        """Whether any key exists (in settings or store); remembered for ``ttl``."""
        if self.static:
            return True
        if self.store is None:
            return False
        now = time.monotonic()
        if self._any is not None and now - self._any[0] < self.ttl:
            return self._any[1]
        found = await self.store.has_keys()
        self._any = (now, found)
        return found
