"""Settings, from keyword arguments or ``SYSEVENTS_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigurationError
from .model import EventLimits
from .redact import MASK, redact_url

ENV_PREFIX = "SYSEVENTS_"
"""Environment variables named ``SYSEVENTS_<FIELD>`` configure :class:`Settings`."""

_SECRET_FIELDS = frozenset({"database_url", "redis_url", "cursor_secret"})


class Settings(BaseModel):
    """Every knob of sysevents, with its default.

    ``Settings.from_env()`` reads ``SYSEVENTS_<NAME>`` variables (for example
    ``SYSEVENTS_DATABASE_URL``, ``SYSEVENTS_POOL_MAX_SIZE``); keyword arguments
    win over the environment. Nothing reads the environment at import time.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    database_url: str = Field(default="memory://", description="Where events are stored.")
    redis_url: str | None = Field(default=None, description="Redis for the cache, if any.")
    pool_min_size: int = Field(default=2, ge=0, description="Connections kept open.")
    pool_max_size: int = Field(default=10, ge=1, description="Connections at most.")
    timeout: float = Field(
        default=5.0, gt=0, description="Seconds a database call may take before it fails."
    )
    cache_event_ttl: float = Field(default=300.0, gt=0, description="Seconds an event is cached.")
    cache_stats_ttl: float = Field(default=30.0, gt=0, description="Seconds stats are cached.")
    cache_prefix: str = Field(default="sysevents", min_length=1, description="Redis key prefix.")
    cache_timeout: float = Field(
        default=0.1,
        gt=0,
        description="Seconds one Redis command may take before the cache is skipped.",
    )
    max_message_bytes: int = Field(default=64 * 1024, ge=1)
    max_details_bytes: int = Field(default=64 * 1024, ge=2)
    count_cap: int = Field(
        default=10_000, ge=0, description="Totals past this are reported as a lower bound."
    )
    cursor_secret: str = Field(
        default="sysevents-cursor", min_length=1, description="Key that signs paging cursors."
    )
    stats_top: int = Field(
        default=1000,
        ge=1,
        description="Entries at most in the by_type and by_source counts; the rest is summed.",
    )
    max_page_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="Bytes at most in one list answer as JSON; a page ends early to stay under.",
    )
    cache_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Bytes of Redis memory the cache's entries may take at most.",
    )

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in _SECRET_FIELDS and isinstance(value, str):
                yield name, redact_url(value) if name.endswith("_url") else MASK
            else:
                yield name, value

    @model_validator(mode="after")
    def _pool_sizes(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        return self

    @property
    def limits(self) -> EventLimits:
        """The event size limits these settings impose."""
        return EventLimits(
            max_message_bytes=self.max_message_bytes, max_details_bytes=self.max_details_bytes
        )

    def updated(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and checked (``ConfigurationError`` if invalid)."""
        try:
            return type(self).model_validate({**self.model_dump(), **changes})
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc)) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``SYSEVENTS_*`` variables, then ``overrides`` (``None`` is skipped)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        parts.append(f"{name} (env {ENV_PREFIX}{name.upper()}): {err['msg']}")
    return "invalid settings: " + "; ".join(parts)
