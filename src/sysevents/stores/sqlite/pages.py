"""Listing pages: keyset by ``(ts, id)`` from a cursor, or an offset, and a capped count."""

# ruff: noqa: S608 - SQL is built from this package's constants; every value is bound.

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from sysevents.model import Event
from sysevents.query import EventQuery

from .rows import SELECT_LIST, event_of, micros
from .where import sql_where, where


def read_page(
    conn: sqlite3.Connection,
    query: EventQuery,
    position: tuple[datetime, int] | None,
    cap: int,
) -> tuple[list[Event], int | None]:
    """Up to ``limit + 1`` matching events of the page, and the count ``query.count`` asks.

    For ``capped`` the count stops at ``cap + 1`` (enough to say there are more).
    """
    parts, params = where(query)
    newest = query.order == "newest"
    page_parts = list(parts)
    page_params: list[Any] = list(params)
    if position is not None:
        page_parts.append("(ts, id) < (?, ?)" if newest else "(ts, id) > (?, ?)")
        page_params += [micros(position[0]), position[1]]
    direction = "DESC" if newest else "ASC"
    sql = (
        f"SELECT {SELECT_LIST} FROM events{sql_where(page_parts)} "
        f"ORDER BY ts {direction}, id {direction} LIMIT ? OFFSET ?"
    )
    page_params += [query.limit + 1, query.offset]
    rows = [event_of(r) for r in conn.execute(sql, page_params)]
    counted: int | None = None
    if query.count == "exact":
        counted = conn.execute(f"SELECT count(*) FROM events{sql_where(parts)}", params).fetchone()[
            0
        ]
    elif query.count == "capped":
        counted = conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM events{sql_where(parts)} LIMIT ?)",
            [*params, cap + 1],
        ).fetchone()[0]
    return rows, counted
