"""Options of the HTTP service that the library's ``Settings`` do not cover."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from sysevents import ConfigurationError

_ENV = {
    "max_body_size": "SYSEVENTS_HTTP_MAX_BODY_SIZE",
    "health_log_interval": "SYSEVENTS_HTTP_HEALTH_LOG_INTERVAL",
    "store_timeout": "SYSEVENTS_HTTP_STORE_TIMEOUT",
    "max_batch_size": "SYSEVENTS_HTTP_MAX_BATCH_SIZE",
    "header_timeout": "SYSEVENTS_HTTP_HEADER_TIMEOUT",
    "body_timeout": "SYSEVENTS_HTTP_BODY_TIMEOUT",
    "keep_alive_timeout": "SYSEVENTS_HTTP_KEEP_ALIVE_TIMEOUT",
    "max_connections": "SYSEVENTS_HTTP_MAX_CONNECTIONS",
}
_INTEGERS = {"max_body_size", "max_batch_size", "max_connections"}


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Knobs of the REST service; each also read from ``SYSEVENTS_HTTP_<NAME>``.

    ``max_body_size`` bytes per request body (a larger one is a 413);
    ``health_log_interval`` seconds between two recorded health events of one
    kind while the state stays the same; ``store_timeout`` seconds a request
    waits for the store before it answers 503 (``None``: the library's
    ``timeout`` plus one second); ``max_batch_size`` events at most in one
    ``POST /api/events/batch``.

    What ``sysevents serve`` gives slow and idle clients: ``header_timeout``
    seconds for a request's headers to arrive (from the connection, or from the
    previous answer), ``body_timeout`` for its body after them,
    ``keep_alive_timeout`` of idleness between requests, and ``max_connections``
    open at once (past it, new requests are answered 503).
    """

    max_body_size: int = 1024 * 1024
    health_log_interval: float = 60.0
    store_timeout: float | None = None
    max_batch_size: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000

    def __post_init__(self) -> None:
        if self.max_body_size < 1:
            raise ConfigurationError("max_body_size must be at least 1 byte")
        if self.health_log_interval < 0:
            raise ConfigurationError("health_log_interval must not be negative")
        if self.store_timeout is not None and not self.store_timeout > 0:
            raise ConfigurationError("store_timeout must be positive")
        if self.max_batch_size < 1:
            raise ConfigurationError("max_batch_size must be at least 1")
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: float | int | None
    ) -> HttpOptions:
        """Options from ``SYSEVENTS_HTTP_*`` variables, then ``overrides`` (``None`` skipped)."""
        env = os.environ if environ is None else environ
        values: dict[str, float | int] = {}
        for field in fields(cls):
            raw = env.get(_ENV[field.name], "")
            if raw:
                try:
                    values[field.name] = int(raw) if field.name in _INTEGERS else float(raw)
                except ValueError:
                    raise ConfigurationError(
                        f"{_ENV[field.name]} must be a number, not {raw!r}"
                    ) from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(_ENV)
        if unknown:
            raise ConfigurationError(f"unknown HTTP options: {', '.join(sorted(unknown))}")
        return cls(**values)  # type: ignore[arg-type]
