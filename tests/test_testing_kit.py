"""The pytest plugin and the example service in docs/ that uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import sysevents
from sysevents import MemoryEventRepository, NewEvent
from sysevents.testing.plugin import CapturedEvents

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "example_service"


async def test_connect_returns_the_fixture_repository(
    sysevents_repo: MemoryEventRepository, sysevents_events: CapturedEvents
) -> None:
    async with sysevents.connect("postgresql://ignored-in-tests/db") as repo:
        await repo.add(NewEvent(event_type="deploy", message="v2", details={"v": 2}))
    # Closing the borrowed repository left the fixture's own open.
    await sysevents_repo.ping()
    event = sysevents_events.assert_one("deploy", v=2)
    assert event.message == "v2"
    assert sysevents_events.matching(severity="error") == []
    assert len(sysevents_events) == 1


def test_connect_is_itself_again_after_the_test() -> None:
    repo = sysevents.connect("memory://")
    assert isinstance(repo, MemoryEventRepository)


async def test_assertion_helpers_fail_with_what_was_logged(
    sysevents_repo: MemoryEventRepository, sysevents_events: CapturedEvents
) -> None:
    await sysevents_repo.add(NewEvent(event_type="a", message="first"))
    await sysevents_repo.add(NewEvent(event_type="a", message="second", severity="error"))
    with pytest.raises(pytest.fail.Exception, match="found 2"):
        sysevents_events.assert_one("a")
    with pytest.raises(pytest.fail.Exception, match="'second'"):
        sysevents_events.assert_none(min_severity="warning")
    assert sysevents_events.assert_one("a", message_contains="sec").severity == "error"


def test_the_example_service_and_its_tests() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE)],
        capture_output=True,
        text=True,
        cwd=EXAMPLE,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
