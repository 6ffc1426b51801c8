"""Response bodies that exist only in the HTTP API (errors and health)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

from sysevents import Event, NewEvent


class FieldError(BaseModel):
    """One bad field of a request."""

    field: str = Field(description="Dotted path of the field, or the parameter name.")
    message: str = Field(description="What is wrong with it.")
    type: str = Field(description="A machine-readable kind of error.")


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="The HTTP status, in words.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong, for a human.")
    errors: list[FieldError] | None = Field(
        default=None, description="Each bad field, for validation errors."
    )


class Health(BaseModel):
    """The service is up; says nothing about the store."""

    status: Literal["ok"] = "ok"
    version: str
    uptime: float = Field(description="Seconds since the service started.")
    cache: dict[str, Any] | None = Field(
        default=None, description="Cache counters, when a Redis cache is configured."
    )


class Backlog(BaseModel):
    """Work the store does in the background that is not done yet."""

    rows: int = Field(description="Events not yet counted into the statistics (a lower bound).")
    seconds: float = Field(description="How long the oldest of them has waited.")
    failures: int = Field(description="Background attempts that failed since the store opened.")


class ReplicaHealth(BaseModel):
    """A read replica, as last seen."""

    name: str = Field(description="Its URL without the password.")
    lag_seconds: float | None = Field(description="Seconds behind the primary; null: down.")
    in_use: bool = Field(description="Whether reads go to it now.")


class DatabaseHealth(BaseModel):
    """The store answered a ping."""

    status: Literal["ok"] = "ok"
    latency_ms: float = Field(description="Round-trip time of the ping, in milliseconds.")
    backlog: Backlog | None = Field(
        default=None,
        description="The store's background backlog (PostgreSQL: the statistics fold), "
        "when it keeps one and says so in time.",
    )
    replicas: list[ReplicaHealth] = Field(
        default_factory=list, description="The read replicas (read_database_url), if any."
    )


DEFAULT_MAX_BATCH_SIZE = 1000
"""The most events one batch may hold, unless configured otherwise."""


def _few_enough(value: Any, info: ValidationInfo) -> Any:
    """Refuse a batch that holds too many events before any of them is validated."""
    context = info.context if isinstance(info.context, dict) else {}
    limit = context.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE)
    if isinstance(value, list) and len(value) > limit:
        raise ValueError(f"at most {limit} events in one batch, not {len(value)}")
    return value


class EventBatch(BaseModel):
    """Several events stored together: all of them, or none."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[NewEvent], BeforeValidator(_few_enough)] = Field(
        description="The events, in order (at most the configured batch size, 1000 by default)."
    )


class StoredBatch(BaseModel):
    """The stored events of a batch, in the order sent."""

    events: list[Event]
