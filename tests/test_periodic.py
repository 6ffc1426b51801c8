"""The one loop of background work (the fold, the sealer, the chores): it never dies quietly."""

from __future__ import annotations

import logging

import pytest

from sysevents._tasks import Periodic
from tests.waiting import eventually

log = logging.getLogger("tests.periodic")


async def test_any_failure_is_retried_counted_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def work() -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise ValueError(f"bug number {calls}")

    loop = Periodic(
        "the test work", work, 0.005, "look at the test", logger=log, task_name="test-periodic"
    )
    caplog.set_level(logging.WARNING, logger="tests.periodic")
    loop.start()
    try:
        await eventually(lambda: calls > 4, "the work to run past its failures")
    finally:
        await loop.stop(5.0)
    health = loop.health()
    assert health.failures == 3
    assert health.failing == 0
    assert health.runs >= 5
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # at most once a minute
    assert "the test work failed (ValueError: bug number 1; 1 time(s) in a row)" in warnings[0]
    assert warnings[0].endswith("look at the test")


async def test_nothing_runs_while_another_process_leads() -> None:
    asked = 0
    ran = 0

    async def leads() -> bool:
        nonlocal asked
        asked += 1
        return False

    async def work() -> None:
        nonlocal ran
        ran += 1

    loop = Periodic("led work", work, 0.005, "", logger=log, task_name="test-periodic", leads=leads)
    loop.start()
    try:
        await eventually(lambda: asked >= 3, "the lease to be asked three times")
    finally:
        await loop.stop(5.0)
    assert ran == 0
    assert loop.health().runs == 0


async def test_a_stopped_loop_can_be_started_again() -> None:
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1

    loop = Periodic("work", work, 0.005, "", logger=log, task_name="test-periodic", at_start=True)
    loop.start()
    await eventually(lambda: runs >= 1, "the run at start")
    await loop.stop(5.0)
    assert loop.stopping
    after = runs
    loop.start()  # a stopped loop may be started again, and stopped again
    await eventually(lambda: runs > after, "a run after restarting")
    await loop.stop(5.0)


def test_an_interval_of_zero_never_starts_a_task() -> None:
    async def work() -> None:
        raise AssertionError("never")

    loop = Periodic("work", work, 0, "", logger=log, task_name="test-periodic")
    loop.start()  # no running loop needed: nothing is scheduled
    assert loop.health().runs == 0
