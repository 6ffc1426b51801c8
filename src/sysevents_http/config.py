"""Options of the HTTP service that the library's ``Settings`` do not cover."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sysevents.settings import CommaList, settings_from

ENV_PREFIX = "SYSEVENTS_HTTP_"
"""Environment variables named ``SYSEVENTS_HTTP_<FIELD>`` configure :class:`HttpOptions`."""


class HttpOptions(BaseSettings):
    """Knobs of the REST service; each also read from ``SYSEVENTS_HTTP_<NAME>``.

    Read by the same rules as :class:`sysevents.Settings` (pydantic-settings).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, env_ignore_empty=True
    )

    max_body_size: int = Field(
        default=1024 * 1024, ge=1, description="Bytes per request body; a larger one is a 413."
    )
    health_log_interval: float = Field(
        default=60.0,
        ge=0,
        description="Seconds between two recorded health events of one kind and state.",
    )
    store_timeout: float | None = Field(
        default=None,
        gt=0,
        description="Seconds a request waits for the store before a 503 (default: the "
        "library's timeout plus one second).",
    )
    max_batch_size: int = Field(default=1000, ge=1, description="Events at most in one batch.")
    metrics: bool = Field(
        default=True, description="Serve Prometheus metrics at /metrics (open, like /api/health)."
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds for a request's headers to arrive, from the connection or the "
        "previous answer (sysevents serve).",
    )
    body_timeout: float = Field(
        default=30.0, gt=0, description="Seconds for a request's body after its headers."
    )
    keep_alive_timeout: float = Field(
        default=5.0, gt=0, description="Seconds an idle connection stays open between requests."
    )
    max_connections: int = Field(
        default=1000, ge=1, description="Connections at once; past it new requests get a 503."
    )
    console: bool = Field(
        default=True, description="Serve the web console at /ui (false: no page, no assets)."
    )
    workers: int | Literal["auto"] = Field(
        default=1,
        description="Processes serving the port (sysevents serve); auto: one per core. "
        "Background work (fold, upkeep, retention) runs in one of them at a time.",
    )
    http: Literal["auto", "httptools", "h11"] = Field(
        default="auto",
        description="uvicorn's HTTP parser: httptools (fast, the default when installed) or h11.",
    )
    access_log: bool = Field(
        default=False,
        description="Log a line per request (every request is counted on /metrics either way).",
    )
    forwarded_allow_ips: CommaList = Field(
        default=(),
        description="Proxies whose X-Forwarded-For and X-Forwarded-Proto are believed "
        "(addresses or networks; * for any). None by default: the client address is the "
        "connection's.",
    )

    @field_validator("workers")
    @classmethod
    def _at_least_one(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1, or auto")
        return value

    @property
    def worker_count(self) -> int:
        """The number of worker processes (``auto``: the cores this process may use)."""
        if self.workers == "auto":
            return max(
                1,
                len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else (os.cpu_count() or 1),
            )
        return self.workers

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> HttpOptions:
        """Options from ``SYSEVENTS_HTTP_*`` variables (or ``environ``), then ``overrides``."""
        return settings_from(cls, ENV_PREFIX, environ, overrides)
