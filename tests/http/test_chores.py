"""The service's chores: retention runs whatever the rest of the upkeep does, and says so."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from sysevents import (
    MemoryEventRepository,
    NewEvent,
    RetentionPolicy,
    RetentionReport,
    Settings,
    StoreUnavailableError,
)
from sysevents.delegating import DelegatingStore
from sysevents_http import create_app
from tests.waiting import eventually

from .test_metrics import scrape, value

OLD = NewEvent(event_type="old", message="expired", timestamp=datetime.now(UTC) - timedelta(days=3))
SETTINGS: dict[str, Any] = {"rate_limit": "off", "retention": "*=1d", "retention_interval": 0.02}


class Failing(DelegatingStore):
    """A store whose upkeep (``maintain``) or retention always fails."""

    def __init__(self, fails: str) -> None:
        super().__init__(MemoryEventRepository())
        self.fails = fails
        self.calls = {"maintain": 0, "apply_retention": 0}

    async def maintain(self, now: datetime | None = None) -> builtins.list[str]:
        self.calls["maintain"] += 1
        if self.fails == "maintain":
            raise StoreUnavailableError("the database is slow")
        return []

    async def apply_retention(
        self, policy: RetentionPolicy, *, now: datetime | None = None, dry_run: bool = False
    ) -> RetentionReport:
        self.calls["apply_retention"] += 1
        if self.fails == "apply_retention":
            raise StoreUnavailableError("the database is slow")
        return await self.inner.apply_retention(policy, now=now, dry_run=dry_run)


async def test_retention_runs_while_the_upkeep_keeps_failing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Failing("maintain")
    old = await store.add(OLD)
    caplog.set_level("WARNING", logger="sysevents_http")
    async with AsyncTestClient(create_app(Settings(**SETTINGS), repository=store)) as client:
        await eventually(lambda: store.calls["maintain"] >= 5, "the upkeep retried")
        await eventually(lambda: store.calls["apply_retention"] >= 1, "retention ran")
        assert (await client.get(f"/api/events/{old.id}")).status_code == 404
        text = await scrape(client)
    assert value(text, "sysevents_chore_failures_total", chore="upkeep") >= 5
    assert value(text, "sysevents_chore_failing", chore="upkeep") >= 5
    assert value(text, "sysevents_chore_failures_total", chore="retention") == 0
    assert value(text, "sysevents_chore_failing", chore="retention") == 0
    warnings = [r for r in caplog.records if r.getMessage().startswith("upkeep failed")]
    assert len(warnings) == 1  # once a minute at most, however often it fails
    assert "check that the database is up" in warnings[0].getMessage()


async def test_the_upkeep_runs_while_retention_keeps_failing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Failing("apply_retention")
    caplog.set_level("WARNING", logger="sysevents_http")
    async with AsyncTestClient(create_app(Settings(**SETTINGS), repository=store)) as client:
        await eventually(lambda: store.calls["apply_retention"] >= 5, "retention retried")
        await eventually(lambda: store.calls["maintain"] >= 5, "the upkeep ran on")
        text = await scrape(client)
    assert value(text, "sysevents_chore_failures_total", chore="retention") >= 5
    assert value(text, "sysevents_chore_failures_total", chore="upkeep") == 0
    warnings = [r for r in caplog.records if r.getMessage().startswith("retention failed")]
    assert len(warnings) == 1
    assert "expired events are kept meanwhile" in warnings[0].getMessage()
