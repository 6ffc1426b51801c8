"""Listing pages: keyset by ``(ts, id)`` from a cursor, or an offset, and a capped count."""

# ruff: noqa: S608 - SQL is built from this package's constants; every value is bound.

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from sysevents.model import Event
from sysevents.query import EventQuery

from .rows import SELECT_LIST, event_of, micros
from .text import lookup
from .where import rows_of, sql_where, where

WINDOW = 20_000
"""Rows a common ``q`` checks in order before asking the index."""


def read_page(
    conn: sqlite3.Connection,
    query: EventQuery,
    position: tuple[datetime, int] | None,
    cap: int,
) -> tuple[list[Event], int | None]:
    """Up to ``limit + 1`` matching events of the page, and the count ``query.count`` asks.

    For ``capped`` the count stops at ``cap + 1`` (enough to say there are more).
    """
    text = lookup(conn, query.q) if query.q is not None else None
    newest = query.order == "newest"
    direction = "DESC" if newest else "ASC"
    keyset = query.model_copy(update={"q": None})
    after: list[Any] = []
    keyed = ""
    if position is not None:
        keyed = "(ts, id) < (?, ?)" if newest else "(ts, id) > (?, ?)"
        after = [micros(position[0]), position[1]]
    order = f" ORDER BY ts {direction}, id {direction}"
    page = [query.limit + 1, query.offset]
    rows = None
    if text is not None and text.common:
        # Even the rarest trigram is in many rows: the next rows in order, each
        # checked, usually fill the page long before the index would. A full
        # page found within the window is the page; else the index answers.
        rest, rest_params = where(keyset)
        if keyed:
            rest.append(keyed)
            rest_params += after
        # The window ends at the timestamp of its last row: the scan below
        # walks the (ts, id) index from the start and stops at a full page.
        edge = "min" if newest else "max"
        bound = (
            f"(SELECT {edge}(ts) FROM (SELECT ts FROM events{sql_where(rest)}{order} "
            f"LIMIT {WINDOW}))"
        )
        within = [*rest, f"ts {'>=' if newest else '<='} {bound}", "instr(message_lower, ?) > 0"]
        sql = f"SELECT {SELECT_LIST} FROM events{sql_where(within)}{order} LIMIT ? OFFSET ?"
        found = conn.execute(sql, [*rest_params, *rest_params, text.needle, *page]).fetchall()
        if len(found) == query.limit + 1:
            rows = found
    source, params = rows_of(query, text)
    if rows is None:
        more = (" AND " if " WHERE " in source else " WHERE ") + keyed if keyed else ""
        sql = f"SELECT {SELECT_LIST}{source}{more}{order} LIMIT ? OFFSET ?"
        rows = conn.execute(sql, [*params, *after, *page]).fetchall()
    counted: int | None = None
    if query.count == "exact":
        counted = conn.execute(f"SELECT count(*){source}", params).fetchone()[0]
    elif query.count == "capped":
        counted = conn.execute(
            f"SELECT count(*) FROM (SELECT 1{source} LIMIT ?)", [*params, cap + 1]
        ).fetchone()[0]
    return [event_of(r) for r in rows], counted
