"""Choosing how ``q`` is looked up: the rarest trigram of the text, probed in the FTS5 index.

A phrase query over every trigram of ``q`` reads the longest posting list of
them (a trigram in every message costs a read of every row). Instead, a few
of ``q``'s trigrams are probed (each counted up to :data:`PROBE` rows) and the
rarest one alone is matched: its rows are the candidates, each checked for
the whole text by ``instr``. A trigram found nowhere means no match at all.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

PROBE = 2000
"""Rows a probe counts up to: a trigram with fewer is rare."""
PROBES = 12
"""Trigrams of ``q`` probed at most (spread over the text)."""

_COUNT = "SELECT count(*) FROM (SELECT 1 FROM events_text WHERE events_text MATCH ? LIMIT ?)"


@dataclass(frozen=True, slots=True)
class Lookup:
    """How the text of ``q`` is looked for."""

    needle: str
    """``q`` lowercased, as messages are indexed."""
    trigram: str | None
    """The one trigram matched in the index; ``None``: ``q`` is too short, rows are scanned."""
    candidates: int
    """How many rows hold that trigram (at most :data:`PROBE`: at least that many)."""

    @property
    def common(self) -> bool:
        """Whether many rows hold even the rarest trigram: scanning recent rows pays."""
        return self.trigram is None or self.candidates >= PROBE

    def match(self) -> str:
        """The FTS5 query for the trigram."""
        assert self.trigram is not None
        return '"' + self.trigram.replace('"', '""') + '"'


def lookup(conn: sqlite3.Connection, q: str) -> Lookup:
    """How to look for ``q`` in the file of ``conn``."""
    needle = q.lower()
    grams = list(dict.fromkeys(needle[i : i + 3] for i in range(len(needle) - 2)))
    if not grams:
        return Lookup(needle, None, PROBE)
    if len(grams) > PROBES:
        step = (len(grams) - 1) / (PROBES - 1)
        grams = [grams[round(i * step)] for i in range(PROBES)]
    best: Lookup | None = None
    for gram in grams:
        found = Lookup(needle, gram, 0)
        n = int(conn.execute(_COUNT, (found.match(), PROBE)).fetchone()[0])
        if best is None or n < best.candidates:
            best = Lookup(needle, gram, n)
        if n == 0:
            break
    assert best is not None
    return best
