"""``sysevents export`` and ``sysevents tail`` against PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import select
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import sysevents
from sysevents import Event, NewEvent
from sysevents.cli import main

pytestmark = pytest.mark.postgres


def _store(url: str, news: list[NewEvent]) -> list[Event]:
    async def go() -> list[Event]:
        async with sysevents.connect(url) as repo:
            return await repo.add_many(news)

    return asyncio.run(go())


def test_export_ndjson_and_csv(empty_postgres_url: str, tmp_path: Path) -> None:
    stored = _store(
        empty_postgres_url,
        [NewEvent(event_type="t", message=f"=m{i}", details={"i": i}) for i in range(2500)],
    )
    out = tmp_path / "events.ndjson"
    assert main(["export", "--database-url", empty_postgres_url, "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert [Event.model_validate_json(line).id for line in lines] == [e.id for e in stored]
    out_csv = tmp_path / "events.csv"
    args = ["export", "--database-url", empty_postgres_url, "--format", "csv", "-o", str(out_csv)]
    assert main([*args, "--detail", "i=7"]) == 0
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text(), newline="")))
    assert [(r["id"], r["message"]) for r in rows] == [(str(stored[7].id), "'=m7")]


def test_export_refuses_a_bad_filter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--database-url", "memory://", "--detail", "a..b=1"]) == 2
    assert "details.a..b" in capsys.readouterr().err


def test_tail_prints_new_events(empty_postgres_url: str) -> None:
    command = [sys.executable, "-m", "sysevents", "tail", "--database-url", empty_postgres_url]
    stop = threading.Event()

    def keep_writing() -> None:
        # The tail starts "from now": write until it has printed one.
        while not stop.is_set():
            _store(empty_postgres_url, [NewEvent(event_type="t", message="other")])
            _store(empty_postgres_url, [NewEvent(event_type="t", message="wanted here")])
            stop.wait(0.2)

    with subprocess.Popen(
        [*command, "--json", "--q", "WANTED"], stdout=subprocess.PIPE, text=True
    ) as tail:
        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            assert tail.stdout is not None
            ready, _, _ = select.select([tail.stdout], [], [], 30)
            assert ready, "the tail printed nothing in 30 s"
            event = Event.model_validate_json(tail.stdout.readline())
            assert event.message == "wanted here"
        finally:
            stop.set()
            writer.join()
            tail.terminate()
