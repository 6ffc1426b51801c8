"""The routes of ``/api/keys``: create, list and revoke API keys (``admin`` scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter
from pydantic import BaseModel, ConfigDict, Field

from sysevents import ConfigurationError, InvalidEventError
from sysevents.audit import KEY_CREATED, KEY_REVOKED, key_record
from sysevents.keys import MAX_NAME_LENGTH, ApiKey, KeyName, Scope, expiry_in
from sysevents_http.auth import KEYED_OPT, SCOPE_OPT, caller_of
from sysevents_http.service import Service

from .params import (
    BAD_REQUEST,
    GUARDED,
    NOT_JSON,
    SERVER_ERROR,
    UNAVAILABLE,
    security,
    spec,
)

ADMIN = {SCOPE_OPT: Scope.ADMIN.value, KEYED_OPT: True}
_NO_KEY = {404: spec("No key has this name.")}
_TAKEN = {409: spec("A key with this name exists already.")}


class KeyInfo(BaseModel):
    """What is known of an API key; never the key itself."""

    name: str
    key_id: str = Field(description="The public part of the key: `se_<key_id>_...`.")
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyInfo:
        """The info of ``key``."""
        return cls(
            name=key.name,
            key_id=key.key_id,
            scopes=sorted(key.scopes),
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
        )


class NewKey(BaseModel):
    """A key to create."""

    model_config = ConfigDict(extra="forbid")

    name: KeyName = Field(examples=["ingest-web"])
    scopes: list[Scope] = Field(min_length=1, examples=[["write"]])
    expires_in: str | None = Field(
        default=None,
        description="How long the key lives, e.g. `90d`, `36h`, `52w`.",
        examples=["90d"],
    )


class CreatedKey(KeyInfo):
    """A new key, with its text: shown this once, kept nowhere."""

    key: str = Field(description="The key; send it as `Authorization: Bearer <key>`.")


def _expiry(expires_in: str | None) -> datetime | None:
    if expires_in is None:
        return None
    try:
        return expiry_in(expires_in)
    except ConfigurationError as exc:
        raise InvalidEventError(
            [{"loc": ("expires_in",), "msg": str(exc), "type": "value_error"}]
        ) from None


async def _record(service: Service, event_type: str, key: ApiKey, actor: str) -> None:
    """Record a change of the keys; the change stands if the record cannot be stored."""
    new = key_record(event_type, key.key_id, key.name, list(key.scopes), key.expires_at, actor)
    await service.events.record(
        new.event_type, new.severity, new.message, new.details or {}, caller=actor
    )


KeyNameParam = Annotated[
    str, PathParameter(description="The key's name.", max_length=MAX_NAME_LENGTH)
]


@post(
    "/api/keys",
    status_code=201,
    summary="Create an API key",
    description="Creates a key with the scopes given; the answer holds the key itself, "
    "shown this once (only its hash is kept).",
    responses={**BAD_REQUEST, **GUARDED, **NOT_JSON, **_TAKEN, **UNAVAILABLE, **SERVER_ERROR},
    opt={"body_model": NewKey, **ADMIN},
    security=security(Scope.ADMIN),
    tags=["keys"],
)
async def create_key(
    request: Request[Any, Any, Any], data: JSONBody[NewKey], service: NamedDependency[Service]
) -> CreatedKey:
    """Create a key (recorded as a ``sysevents.key_created`` event)."""
    store = service.access.key_store()
    service.access.keys.refuse_static_name(data.name)
    key, text = await store.create_key(data.name, frozenset(data.scopes), _expiry(data.expires_in))
    service.access.keys.forget(key.key_id)
    await _record(service, KEY_CREATED, key, caller_of(request).id)
    return CreatedKey(**KeyInfo.of(key).model_dump(), key=text)


@get(
    "/api/keys",
    summary="List the API keys",
    description="Every key, revoked and expired ones included; never the keys themselves.",
    responses={**GUARDED, **UNAVAILABLE, **SERVER_ERROR},
    opt=ADMIN,
    security=security(Scope.ADMIN),
    tags=["keys"],
)
async def list_keys(service: NamedDependency[Service]) -> list[KeyInfo]:
    """List the keys."""
    return [KeyInfo.of(k) for k in await service.access.key_store().list_keys()]


@delete(
    "/api/keys/{name:str}",
    status_code=200,
    summary="Revoke an API key",
    description="The key stops working on every replica within a few seconds.",
    responses={**BAD_REQUEST, **GUARDED, **_NO_KEY, **UNAVAILABLE, **SERVER_ERROR},
    opt=ADMIN,
    security=security(Scope.ADMIN),
    tags=["keys"],
)
async def revoke_key(
    request: Request[Any, Any, Any], name: KeyNameParam, service: NamedDependency[Service]
) -> KeyInfo:
    """Revoke a key (recorded as a ``sysevents.key_revoked`` event)."""
    key = await service.access.key_store().revoke_key(name)
    service.access.keys.forget(key.key_id)  # at once here; other replicas within the ring's ttl
    await _record(service, KEY_REVOKED, key, caller_of(request).id)
    return KeyInfo.of(key)


KEY_ROUTES = [create_key, list_keys, revoke_key]
"""Every handler of ``/api/keys``."""
