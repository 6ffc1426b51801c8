"""Conformance: ``q`` and ``details.PATH=VALUE`` filters, alike in every store."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sysevents.query import EventFilter, EventQuery
from sysevents.store import EventRepository

from .helpers import OWN, all_pages, new


async def _messages(repo: EventRepository, **filters: Any) -> list[str]:
    found = await all_pages(repo, EventQuery(source=OWN, order="oldest", count="exact", **filters))
    page = await repo.list(EventQuery(source=OWN, count="exact", **filters))
    stats = await repo.stats(EventFilter(source=OWN, **filters))
    assert page.total == stats.total == len(found)
    return [e.message for e in found]


@pytest.mark.asyncio
class SearchConformance:
    """Searching messages and details. Runs against the ``repo`` fixture of the subclass."""

    async def test_q_is_a_substring_ignoring_case(self, repo: EventRepository) -> None:
        texts = [
            "Connection TIMEOUT after 5s",
            "timeout",
            "no time out here",
            "ÉCHEC de connexion",
            "échec",
            "İSTANBUL office",
            "straße closed",
            "STRASSE",
            "ΣΟΦΟΣ",
            "100% done_now",
            "100 percent done",
            r"path C:\temp",
        ]
        await repo.add_many([new("t", message=m, source=OWN) for m in texts])
        assert await _messages(repo, q="timeout") == texts[:2]
        assert await _messages(repo, q="TimeOut") == texts[:2]
        assert await _messages(repo, q="échec") == texts[3:5]
        assert await _messages(repo, q="ÉCHEC") == texts[3:5]
        # Unicode lowercase, not case folding: 'İ' lowers to 'i' + a combining dot,
        # 'ß' stays 'ß', and a final sigma lowers to 'ς'.
        assert await _messages(repo, q="i̇stanbul") == [texts[5]]
        assert await _messages(repo, q="İstanbul") == [texts[5]]
        assert await _messages(repo, q="ß") == [texts[6]]
        assert await _messages(repo, q="STRASSE") == [texts[7]]
        assert await _messages(repo, q="\u03c3\u03bf\u03c6\u03bf\u03c3") == []
        assert await _messages(repo, q="\u03c3\u03bf\u03c6\u03bf\u03c2") == [texts[8]]
        assert await _messages(repo, q="ΣΟΦΟΣ") == [texts[8]]
        # LIKE's wildcards and escape are plain characters.
        assert await _messages(repo, q="100%") == [texts[9]]
        assert await _messages(repo, q="e_n") == [texts[9]]
        assert await _messages(repo, q="\\t") == [texts[11]]
        assert await _messages(repo, q="nothing like it") == []

    async def test_details_paths_and_json_equality(self, repo: EventRepository) -> None:
        details: list[dict[str, Any] | None] = [
            {"user": {"id": 4242, "name": "ann"}, "n": 1},
            {"user": {"id": "4242"}, "n": 1.0},
            {"user": {"id": 4242.0}, "n": "1", "tags": ["a", "b"]},
            {"n": True, "tags": ["b", "a"], "obj": {"k": 1, "j": [1, 2]}},
            {"n": None, "user.id": 4242, "obj": {"k": 1}},
            {"user": [{"id": 4242}], "n": 10**20},
            None,
        ]
        await repo.add_many(
            [new("t", message=f"e{i}", details=d, source=OWN) for i, d in enumerate(details)]
        )
        assert await _messages(repo, details={"user.id": 4242}) == ["e0", "e2"]
        assert await _messages(repo, details={"user.id": "4242"}) == ["e1"]
        assert await _messages(repo, details={"n": 1}) == ["e0", "e1"]
        assert await _messages(repo, details={"n": 1.0}) == ["e0", "e1"]
        assert await _messages(repo, details={"n": "1"}) == ["e2"]
        assert await _messages(repo, details={"n": True}) == ["e3"]
        assert await _messages(repo, details={"n": None}) == ["e4"]
        assert await _messages(repo, details={"n": 1e20}) == ["e5"]
        assert await _messages(repo, details={"tags": ["a", "b"]}) == ["e2"]
        assert await _messages(repo, details={"obj": {"k": 1}}) == ["e4"]
        assert await _messages(repo, details={"obj": {"j": [1, 2], "k": 1}}) == ["e3"]
        assert await _messages(repo, details={"obj.j": [1, 2]}) == ["e3"]
        assert await _messages(repo, details={"user.id": 4242, "n": 1}) == ["e0"]
        assert await _messages(repo, details={"user.name": "ann", "n": "1"}) == []
        assert await _messages(repo, details={"missing": None}) == []
        assert await _messages(repo, details={"user.id": 4242}, q="E2") == ["e2"]

    async def test_bad_search_filters_are_refused(self, repo: EventRepository) -> None:
        for bad in ({"q": ""}, {"q": "a\x00"}, {"details": {"a..b": 1}}, {"details": {"": 1}}):
            with pytest.raises(ValidationError):
                EventFilter(**bad)
        with pytest.raises(ValidationError):
            EventFilter(details={"a": float("nan")})
        with pytest.raises(ValidationError):
            EventFilter(details={f"k{i}": i for i in range(17)})
