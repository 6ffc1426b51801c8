"""Which (event_type, source) pairs have events: all-time rollups, and rows not folded yet."""

# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence

from .pool import Connection
from .rollups import ALL_BUCKET, NO_SOURCE, Level

Series = tuple[str, str | None]

_KNOWN = (
    "SELECT p.t, p.s FROM unnest(%s::text[], %s::text[]) AS p (t, s) WHERE EXISTS ("
    "SELECT 1 FROM system_event_rollups r WHERE r.level = "
    + str(int(Level.ALL))
    + " AND r.bucket = '"
    + ALL_BUCKET
    + "' AND r.event_type = p.t AND r.source = coalesce(p.s, '"
    + NO_SOURCE
    + "') AND r.n > 0) OR EXISTS (SELECT 1 FROM system_events e WHERE e.ingest_xid >= "
    "(SELECT watermark FROM system_event_rollup_state WHERE id = 1) "
    "AND e.event_type = p.t AND e.source IS NOT DISTINCT FROM p.s)"
)


async def known_series(conn: Connection, pairs: Sequence[Series]) -> set[Series]:
    """Those of ``pairs`` that some stored event has (counted, or written since the fold)."""
    if not pairs:
        return set()
    cur = await conn.execute(
        _KNOWN,
        [[t for t, _ in pairs], [s for _, s in pairs]],
    )
    return {(row[0], row[1]) for row in await cur.fetchall()}
