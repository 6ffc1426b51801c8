"""A pytest plugin for services that log with sysevents (registered as ``sysevents``).

Fixtures:

``sysevents_repo``
    A fresh, open in-memory repository, wired as the default: while the test
    runs, every ``sysevents.connect()`` call returns it (closing it there is a
    no-op), so code under test needs no changes.
``sysevents_events``
    :class:`CapturedEvents` over that repository, to assert on what was logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sysevents import _connect
from sysevents.model import Event, Severity
from sysevents.query import EventFilter
from sysevents.stores.memory import MemoryEventRepository


class CapturedEvents:
    """The events stored in the test's in-memory repository, oldest first."""

    def __init__(self, repo: MemoryEventRepository) -> None:
        self.repo = repo

    def all(self) -> list[Event]:
        """Every stored event, oldest first (by timestamp, then id)."""
        return self.repo.snapshot()

    def matching(
        self,
        event_type: str | None = None,
        *,
        severity: Severity | str | None = None,
        min_severity: Severity | str | None = None,
        source: str | None = None,
        message_contains: str | None = None,
        **details: Any,
    ) -> list[Event]:
        """The events that match every given condition (details compared by key)."""
        wanted = EventFilter(
            event_type=event_type,
            severity=None if severity is None else Severity(severity),
            min_severity=min_severity,
            source=source,
        )
        return [
            event
            for event in self.all()
            if wanted.matches(event)
            and (message_contains is None or message_contains in event.message)
            and all((event.details or {}).get(k) == v for k, v in details.items())
        ]

    def assert_one(self, event_type: str | None = None, **conditions: Any) -> Event:
        """The single matching event; fails the test, listing what was logged, otherwise."""
        found = self.matching(event_type, **conditions)
        if len(found) != 1:
            pytest.fail(
                f"expected one event matching {event_type=} {conditions}, found {len(found)}; "
                f"logged: {self._summary()}",
                pytrace=False,
            )
        return found[0]

    def assert_none(self, event_type: str | None = None, **conditions: Any) -> None:
        """Fail the test if any event matches."""
        found = self.matching(event_type, **conditions)
        if found:
            pytest.fail(
                f"expected no event matching {event_type=} {conditions}, found {len(found)}: "
                f"{self._summary(found)}",
                pytrace=False,
            )

    def _summary(self, events: list[Event] | None = None) -> str:
        shown = events if events is not None else self.all()
        return ", ".join(f"{e.event_type}/{e.severity.value}: {e.message[:60]!r}" for e in shown)

    def __len__(self) -> int:
        return len(self.repo)


@pytest.fixture
def sysevents_repo() -> Iterator[MemoryEventRepository]:
    """A fresh in-memory repository that every ``sysevents.connect()`` returns."""
    repo = MemoryEventRepository()
    with _connect.default_repository(repo):
        yield repo


@pytest.fixture
def sysevents_events(sysevents_repo: MemoryEventRepository) -> CapturedEvents:
    """Assertions over the events stored during the test."""
    return CapturedEvents(sysevents_repo)
