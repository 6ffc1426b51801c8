"""``GET /api/digests``: the sealed digests, for archiving them away from the database."""

from __future__ import annotations

from typing import Annotated

from litestar import route
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import QueryParameter
from pydantic import BaseModel, Field

from sysevents.integrity import Digest
from sysevents.keys import Scope
from sysevents.rules import MAX_EVENT_ID
from sysevents_http.auth import SCOPE_OPT
from sysevents_http.service import Service

from .params import BAD_REQUEST, GUARDED, READ, SERVER_ERROR, UNAVAILABLE, security

MAX_LIMIT = 1000


class DigestInfo(BaseModel):
    """One digest of the chain (docs/security.md); its entries stay in the store."""

    seq: int
    after: str = Field(description="The position after which its events start (`XID-ID`).")
    last: str = Field(description="The position of its last event (`XID-ID`).")
    count: int
    min_id: int
    max_id: int
    events_sha256: str = Field(description="SHA-256 of its entries (hex).")
    previous: str = Field(description="The hash of the previous digest (hex; zeros: none).")
    hash: str = Field(description="SHA-256 of this digest's header: the next one names it.")
    sealed_at: str
    next_xid: int
    key: str = Field(description="The id of the key that signed it, or `unsigned`.")
    signature: str | None = Field(description="Ed25519 signature of the header (hex).")


class DigestPage(BaseModel):
    """Digests in order, and where the next page starts."""

    digests: list[DigestInfo]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null: this was the last."
    )


AfterParam = Annotated[
    int, QueryParameter(ge=0, le=MAX_EVENT_ID, description="Digests after this `seq`.")
]
LimitParam = Annotated[
    int, QueryParameter(ge=1, le=MAX_LIMIT, description=f"At most this many (1-{MAX_LIMIT}).")
]


def _info(digest: Digest) -> DigestInfo:
    return DigestInfo.model_validate(digest.as_json())


@route(
    http_method=READ,
    path="/api/digests",
    summary="List the sealed digests",
    description="The chain of digests that seals the stored events (see the security guide), "
    "oldest first, for archiving elsewhere: `sysevents verify` recomputes them from the events.",
    responses={**BAD_REQUEST, **GUARDED, **UNAVAILABLE, **SERVER_ERROR},
    opt={SCOPE_OPT: Scope.READ.value},
    security=security(Scope.READ),
    tags=["integrity"],
)
async def list_digests(
    service: NamedDependency[Service], after: AfterParam = 0, limit: LimitParam = 100
) -> DigestPage:
    """A page of digests."""
    seals = service.store.seals
    if seals is None:
        raise HTTPException(status_code=501, detail="this event store keeps no digests")
    found = await service.store.run("digests", lambda: seals.digests(after=after, limit=limit))
    return DigestPage(
        digests=[_info(d) for d in found],
        next_after=found[-1].seq if len(found) == limit else None,
    )


DIGEST_ROUTES = [list_digests]
"""The digests handler."""
