"""Settings, from keyword arguments or ``SYSEVENTS_*`` environment variables.

Every settings class of sysevents is a pydantic-settings ``BaseSettings``: one
way to read the environment, one set of rules. Secrets (the URLs' passwords,
keys, cursor secrets) never appear in a ``repr``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigurationError
from .keys import static_keys
from .model import EventLimits
from .redact import redact_url
from .redis_url import check_redis_url
from .retention import RetentionPolicy

ENV_PREFIX = "SYSEVENTS_"
"""Environment variables named ``SYSEVENTS_<FIELD>`` configure :class:`Settings`."""

_URL_FIELDS = frozenset({"database_url", "redis_url"})

S = TypeVar("S", bound=BaseSettings)


def _comma_list(value: Any) -> Any:
    """``a,b`` (as the environment spells a list) as ``["a", "b"]``; a list as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]
"""A list of texts, written ``a,b,c`` in the environment."""
SecretList = Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(_comma_list)]
"""A list of secrets, written ``a,b,c`` in the environment."""

AuthMode = Literal["auto", "required", "off"]
"""When the REST API requires an API key (see :attr:`Settings.auth`)."""

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")


RateUnit = Literal["second", "minute", "hour"]
"""The window of a rate limit."""


def parse_rate(text: str) -> tuple[int, RateUnit]:
    """``N/second``, ``N/minute`` or ``N/hour`` as ``(N, unit)``."""
    match = _RATE.match(text)
    if not match or int(match[1]) < 1:
        raise ValueError("must read N/second, N/minute or N/hour, with N at least 1")
    return int(match[1]), match[2]  # type: ignore[return-value]


_SIZE_UNITS = {"B": 1, "KB": 1_000, "MB": 1_000_000, "GB": 1_000_000_000}
_INGEST_PART = re.compile(
    r"^\s*(?:(?P<events>\d+)\s*/\s*(?:s|second)|(?P<size>\d+)\s*(?P<unit>B|KB|MB|GB)\s*/\s*"
    r"(?:s|second)|burst\s*=\s*(?P<burst>\d+)\s*s)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class IngestRate:
    """What one caller may store: events and bytes per second, with a burst."""

    events: int
    """Events per second."""
    bytes: int
    """Bytes of request bodies per second."""
    burst: int
    """Seconds of either a caller may use at once, after being idle."""


def parse_ingest(text: str) -> IngestRate | None:
    """``EVENTS/second,SIZE/second,burst=Ns`` (e.g. ``100000/s,100MB/s,burst=10s``); ``off``."""
    if text.strip().lower() == "off":
        return None
    found: dict[str, int] = {}
    for part in text.split(","):
        match = _INGEST_PART.match(part)
        if match is None:
            raise ValueError(
                "must read EVENTS/second,SIZE/second,burst=Ns (e.g. 100000/s,100MB/s,burst=10s) "
                "or off"
            )
        if match["events"]:
            found["events"] = int(match["events"])
        elif match["size"]:
            found["bytes"] = int(match["size"]) * _SIZE_UNITS[match["unit"].upper()]
        else:
            found["burst"] = int(match["burst"])
    if set(found) != {"events", "bytes", "burst"} or 0 in found.values():
        raise ValueError("gives events per second, bytes per second and a burst, each above 0")
    return IngestRate(**found)


class Settings(BaseSettings):
    """Every knob of sysevents, with its default.

    ``Settings()`` and ``Settings.from_env()`` read ``SYSEVENTS_<NAME>``
    variables (for example ``SYSEVENTS_DATABASE_URL``); keyword arguments win
    over the environment. Nothing reads the environment at import time.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, env_ignore_empty=True
    )

    database_url: str = Field(default="memory://", description="Where events are stored.")
    redis_url: str | None = Field(
        default=None,
        description="Redis for the cache and the service's shared limits, if any: "
        "redis://host:port/db, or a Redis Cluster: redis+cluster://host:port,host:port "
        "(rediss:// and rediss+cluster:// for TLS).",
    )
    read_database_url: CommaList = Field(
        default=(),
        description="PostgreSQL streaming replicas that serve lists, stats, histograms and "
        "search (comma-separated); a caller still reads its own writes.",
    )
    max_replica_lag: float = Field(
        default=5.0,
        gt=0,
        description="Seconds a replica may be behind the primary before reads leave it out.",
    )
    pool_min_size: int = Field(default=2, ge=0, description="Connections kept open.")
    pool_max_size: int = Field(default=10, ge=1, description="Connections at most.")
    pool_write_reserve: int = Field(
        default=2,
        ge=0,
        le=10_000,
        description="Connections of the pool that reads (lists, stats, searches, exports, live "
        "tails) never take: kept for writes (reads keep at least one).",
    )
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
    cache_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Bytes of Redis memory the cache's entries may take at most.",
    )
    max_message_bytes: int = Field(default=64 * 1024, ge=1)
    max_details_bytes: int = Field(default=64 * 1024, ge=2)
    count_cap: int = Field(
        default=10_000, ge=0, description="Totals past this are reported as a lower bound."
    )
    cursor_secret: SecretList = Field(
        default=(),
        description="Keys that sign paging cursors, newest first (older ones still read "
        "cursors in flight). Default: PostgreSQL keeps one made by `sysevents migrate`; "
        "the memory store makes one per process.",
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
    retention: str = Field(
        default="",
        description="Retention rules SELECTOR=AGE,... (SELECTOR: *, a severity or type:GLOB; "
        "AGE: 36h, 7d, 52w); empty: every event is kept.",
    )
    retention_interval: float = Field(
        default=600.0, gt=0, description="Seconds between two applications of the retention rules."
    )
    fold_interval: float = Field(
        default=1.0,
        ge=0,
        description="PostgreSQL: seconds between two counts of new events into the statistics' "
        "rollups (0: this process never counts them).",
    )
    fold_step: int = Field(
        default=50_000,
        ge=1,
        description="PostgreSQL: rows counted into the statistics' rollups per statement; a "
        "backlog is folded in steps this size, back to back, each well within the timeout.",
    )
    tail_poll: float = Field(
        default=1.0,
        gt=0,
        description="PostgreSQL: seconds between two looks for new events by a live tail "
        "that no notification woke.",
    )
    idempotency_window: float = Field(
        default=86400.0,
        gt=0,
        description="Seconds an idempotency key is remembered after its event was stored.",
    )
    append_only: bool = Field(
        default=False, description="Refuse to change or delete events (retention still applies)."
    )
    # -- sealing: the digest chain that shows tampering (docs/security.md) ----------
    seal_interval: float = Field(
        default=10.0,
        ge=0,
        description="Seconds between two sealings of committed events into digests (0: never "
        "in the background; `sysevents verify` still checks what was sealed).",
    )
    seal_step: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Events at most in one digest."
    )
    seal_key: SecretStr | None = Field(
        default=None,
        description="The Ed25519 key digests are signed with (base64; `sysevents seal-key` "
        "makes one). Keep it away from the database. Unset: digests are chained, unsigned.",
    )
    # -- the REST API's access control (the client's key, for http:// URLs) ------
    api_key: SecretStr | None = Field(
        default=None, description="The key an http:// repository sends to the REST API."
    )
    api_keys: SecretStr | None = Field(
        default=None,
        description="Keys given in full, for stateless deployments: NAME:SCOPE+SCOPE:KEY,...",
    )
    auth: AuthMode = Field(
        default="auto",
        description="auto: keys are required once any exists or the server listens beyond "
        "this machine; required; or off.",
    )
    rate_limit: str = Field(
        default="1000/second",
        description="Requests per key (or client address when auth is off): N/second, "
        "N/minute or N/hour; off for none.",
    )
    address_limit: str = Field(
        default="2000/second",
        description="Requests per client address, counted before authentication (failed ones "
        "and open routes included): N/second, N/minute or N/hour; off for none.",
    )
    ingest_limit: str = Field(
        default="100000/second,100MB/second,burst=10s",
        description="Events and request bytes one caller may store per second, and the seconds "
        "of either it may use at once: EVENTS/second,SIZE/second,burst=Ns; off for none.",
    )
    max_new_series: int = Field(
        default=1000,
        ge=0,
        description="New (event_type, source) pairs one caller may start per hour (0: no "
        "limit): each adds statistics rows for good.",
    )
    max_streams_per_key: int = Field(
        default=5, ge=1, le=10_000, description="Live streams one caller may hold open at once."
    )
    max_reads_per_key: int = Field(
        default=8, ge=1, le=10_000, description="Reading requests one caller may have under way."
    )
    cors_origins: CommaList = Field(
        default=(), description="Origins whose pages may call the API (none: CORS is off)."
    )
    allowed_hosts: CommaList = Field(
        default=(),
        description="Names (Host headers) the API answers while it requires no key, besides "
        "this machine's loopback names and addresses (which defeats DNS rebinding); * for any.",
    )

    @field_validator("rate_limit", "address_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        if value != "off":
            parse_rate(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value:
            check_redis_url(value)
        return value

    @field_validator("ingest_limit")
    @classmethod
    def _ingest(cls, value: str) -> str:
        parse_ingest(value)
        return value

    @field_validator("api_keys")
    @classmethod
    def _static_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                static_keys(value.get_secret_value())
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("retention")
    @classmethod
    def _policy(cls, value: str | None) -> str | None:
        RetentionPolicy.parse(value)
        return value

    @model_validator(mode="after")
    def _checks(self) -> Settings:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        if self.read_database_url and not self.database_url.startswith(("postgresql", "postgres:")):
            raise ValueError("read_database_url needs a PostgreSQL database_url")
        for url in self.read_database_url:
            if not url.startswith(("postgresql://", "postgres://")):
                raise ValueError(f"read_database_url: {redact_url(url)} is not a postgresql:// URL")
        return self

    @property
    def retention_policy(self) -> RetentionPolicy:
        """The retention rules, parsed."""
        return RetentionPolicy.parse(self.retention)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in _URL_FIELDS and isinstance(value, str):
                yield name, redact_url(value)
            elif name == "read_database_url":
                yield name, tuple(redact_url(url) for url in value)
            else:
                yield name, value

    @property
    def limits(self) -> EventLimits:
        """The event size limits these settings impose."""
        return EventLimits(
            max_message_bytes=self.max_message_bytes, max_details_bytes=self.max_details_bytes
        )

    @property
    def cursor_secrets(self) -> list[str]:
        """The cursor secrets as text, newest first."""
        return [secret.get_secret_value() for secret in self.cursor_secret]

    def updated(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and checked (``ConfigurationError`` if invalid)."""
        try:
            return type(self).model_validate({**dict(self), **changes})
        except ValidationError as exc:
            raise ConfigurationError(describe(exc, ENV_PREFIX)) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``SYSEVENTS_*`` variables (or ``environ``), then ``overrides``.

        Overrides that are ``None`` are skipped; an invalid value is a
        ``ConfigurationError`` naming its variable.
        """
        return settings_from(cls, ENV_PREFIX, environ, overrides)


def with_overrides(settings: Settings | None, overrides: Mapping[str, Any]) -> Settings:
    """``settings`` with ``overrides`` of its fields applied and checked.

    Without ``settings``, the defaults: the environment is not read (a store
    built in code is configured by that code alone). An invalid value is a
    ``ConfigurationError`` naming it.
    """
    if settings is None:
        try:
            return Settings.model_validate(dict(overrides))
        except ValidationError as exc:
            raise ConfigurationError(describe(exc, ENV_PREFIX)) from None
    return settings.updated(**overrides) if overrides else settings


def environment_of(settings: BaseSettings, prefix: str) -> dict[str, str | None]:
    """``settings`` as the ``PREFIX_NAME`` variables that give them back (``None``: unset).

    What a process passes on to the processes it starts (``serve --workers``):
    ``settings_from`` reads the same settings from these variables. Secrets are
    written in the clear: the environment of one's own children is theirs.
    """
    out: dict[str, str | None] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            text = None
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, tuple):
            text = ",".join(
                v.get_secret_value() if isinstance(v, SecretStr) else str(v) for v in value
            )
        else:
            text = str(value)
        out[prefix + name.upper()] = text
    return out


def settings_from(
    cls: type[S], prefix: str, environ: Mapping[str, str] | None, overrides: Mapping[str, Any]
) -> S:
    """``cls`` from the environment (``environ``, or the process's) and ``overrides``."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        if environ is None:
            return cls(**given)
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = environ.get(prefix + name.upper())
            if raw:
                values[name] = raw
        # model_validate reads no environment: only these values.
        return cls.model_validate({**values, **given})
    except ValidationError as exc:
        raise ConfigurationError(describe(exc, prefix)) from None


def describe(exc: ValidationError, prefix: str) -> str:
    """A validation error of settings, each problem naming its environment variable."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        if not err["loc"]:  # a rule between settings: the message names them
            parts.append(str(err["msg"]).removeprefix("Value error, "))
            continue
        name = str(err["loc"][0])
        if err["type"] == "extra_forbidden":
            parts.append(f"{name}: there is no such setting")
        else:
            parts.append(f"{name} (env {prefix}{name.upper()}): {err['msg']}")
    return "invalid settings: " + "; ".join(parts)
