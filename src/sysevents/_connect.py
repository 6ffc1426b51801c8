"""``connect()``: a URL picks the backend; a Redis URL adds the cache."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from .delegating import DelegatingStore
from .errors import ConfigurationError
from .settings import Settings
from .store import EventRepository

# Set only by sysevents.testing: the repository every connect() returns.
_default: EventRepository | None = None

# scheme -> (module, class, extra that installs its drivers)
_BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "memory": ("sysevents.stores.memory", "MemoryEventRepository", None),
    "postgresql": ("sysevents.stores.postgres", "PostgresEventRepository", "postgres"),
    "postgres": ("sysevents.stores.postgres", "PostgresEventRepository", "postgres"),
    "sqlite": ("sysevents.stores.sqlite", "SqliteEventRepository", None),
    "http": ("sysevents.stores.http", "HttpEventRepository", "http"),
    "https": ("sysevents.stores.http", "HttpEventRepository", "http"),
}


def _load(module: str, name: str, extra: str | None) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if extra is None or (exc.name or "").startswith("sysevents"):
            raise
        raise ConfigurationError(
            f'{module} needs the {exc.name!r} package: pip install "sysevents[{extra}]"'
        ) from exc


def connect(
    url: str | None = None,
    *,
    redis_url: str | None = None,
    read_url: str | Sequence[str] | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> EventRepository:
    """Create the repository that ``url`` names; open it with ``async with``.

    ``url`` is ``memory://``, ``sqlite:///PATH``, ``postgresql://…`` (``postgres://`` too) or the
    ``http://``/``https://`` root of a sysevents REST API; when it is omitted,
    ``SYSEVENTS_DATABASE_URL`` (default ``memory://``) is used.
    With ``redis_url`` (or ``SYSEVENTS_REDIS_URL``) the Redis cache wraps it.
    ``read_url`` names PostgreSQL streaming replicas for the reads
    (``read_database_url``; see ``sysevents.stores.postgres.replicas``).
    Other keyword arguments override any field of :class:`Settings`.
    """
    if _default is not None:
        return _Borrowed(_default)
    if read_url is not None:
        options["read_database_url"] = [read_url] if isinstance(read_url, str) else read_url
    overrides = {"database_url": url, "redis_url": redis_url, **options}
    if settings is None:
        settings = Settings.from_env(**overrides)
    else:
        changed = {k: v for k, v in overrides.items() if v is not None}
        settings = settings.updated(**changed)
    scheme = urlsplit(settings.database_url).scheme.lower()
    try:
        module, name, extra = _BACKENDS[scheme]
    except KeyError:
        known = ", ".join(f"{s}://" for s in _BACKENDS)
        raise ConfigurationError(
            f"unknown database URL scheme {scheme + '://' if scheme else '(none)'}: "
            f"use one of {known}"
        ) from None
    backend = _load(module, name, extra)
    repo: EventRepository = backend.from_settings(settings)
    if settings.redis_url:
        cache = _load("sysevents.cache", "CachedEventRepository", "redis")
        repo = cache.from_settings(repo, settings)
    return repo


@contextlib.contextmanager
def default_repository(repo: EventRepository) -> Iterator[EventRepository]:
    """Make every ``connect()`` return ``repo`` (borrowed: closing it there does nothing)."""
    global _default
    previous, _default = _default, repo
    try:
        yield repo
    finally:
        _default = previous


class _Borrowed(DelegatingStore):
    """A store lent out by ``default_repository``: its owner opens and closes it.

    Everything else is the lent store's, optional parts included.
    """

    async def open(self) -> None:
        """Nothing to do: the owner opened it."""

    async def close(self) -> None:
        """Nothing to do: the owner closes it."""
