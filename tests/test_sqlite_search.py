"""``q`` on SQLite past the index's probe: common texts scan recent rows first, rare ones not.

Small stores (the conformance suite's) never reach :data:`PROBE` rows per
trigram; these pages are compared with memory's on a store that does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import sysevents
from sysevents import EventFilter, EventQuery, MemoryEventRepository, NewEvent
from sysevents.stores.sqlite import pages
from sysevents.stores.sqlite.text import PROBE

START = datetime(2026, 1, 1, tzinfo=UTC)


def events() -> list[NewEvent]:
    out = []
    for i in range(PROBE + 700):
        word = "needle" if i % 97 == 0 else "hay"
        out.append(
            NewEvent(
                event_type="t",
                message=f"common text {word} #{i}",
                # Out of order, and some equal: (timestamp, id) orders the pages.
                timestamp=START + timedelta(seconds=(i * 7919) % 1500),
            )
        )
    return out


@pytest.mark.parametrize("window", [20_000, 100])
async def test_common_and_rare_texts_page_as_in_memory(
    tmp_path: Path, window: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small window makes the rare matches of a common text fall back to the index.
    monkeypatch.setattr(pages, "WINDOW", window)
    memory = MemoryEventRepository(cursor_secret="s")
    async with sysevents.connect(f"sqlite:///{tmp_path / 'q.db'}", cursor_secret="s") as repo:
        for store in (memory, repo):
            await store.add_many(events())
        for q in ("common", "COMMON TEXT", "needle", "t hay #1", "#2", "nothing here"):
            for order in ("newest", "oldest"):
                query = EventQuery(q=q, order=order, limit=40, count="exact")
                for _ in range(3):  # three pages, by cursor
                    mine, theirs = await memory.list(query), await repo.list(query)
                    assert [e.message for e in theirs.items] == [e.message for e in mine.items]
                    assert theirs.total == mine.total, q
                    if mine.next_cursor is None:
                        assert theirs.next_cursor is None
                        break
                    assert theirs.next_cursor is not None
                    query = query.model_copy(update={"cursor": mine.next_cursor})
            capped = EventQuery(q=q, offset=30, limit=20)
            assert [e.message for e in (await repo.list(capped)).items] == [
                e.message for e in (await memory.list(capped)).items
            ]
            assert await repo.stats(EventFilter(q=q)) == await memory.stats(EventFilter(q=q))
