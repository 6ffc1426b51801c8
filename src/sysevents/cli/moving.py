"""``sysevents import`` and ``sysevents copy``: events into a store, from a file or a store."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import IO

from sysevents import connect
from sysevents.settings import Settings
from sysevents.store import EventRepository
from sysevents.transfer import Progress, TransferReport, ndjson_pages, store_pages, transfer

EVERY = 0.5
"""Seconds between two progress lines."""


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``import`` and ``copy`` commands."""
    load = commands.add_parser(
        "import", help="store the events of an NDJSON file (as export writes it), once"
    )
    load.add_argument("file", help="the NDJSON file, or - for standard input")
    load.add_argument("--database-url", help="the store (default: SYSEVENTS_DATABASE_URL)")
    copy = commands.add_parser(
        "copy", help="copy every event of one store into another (e.g. SQLite to PostgreSQL)"
    )
    copy.add_argument("from_url", metavar="FROM_URL", help="the store to read")
    copy.add_argument("to_url", metavar="TO_URL", help="the store to write")


def _quiet(settings: Settings) -> Settings:
    # No cache and no background folding: a bulk load goes straight to the store.
    return settings.updated(fold_interval=0, redis_url=None)


def _preparer(repo: EventRepository) -> Callable[[list[datetime]], Awaitable[object]] | None:
    """PostgreSQL's ``make_room``: imported months get partitions of their own."""
    make_room = getattr(repo, "make_room", None)
    return make_room if callable(make_room) else None


class _Shown:
    """Progress on stderr, a line every :data:`EVERY` seconds (and the last one)."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self.last >= EVERY:
            self.last = now
            print(progress.line(), file=sys.stderr, flush=True)


def _done(report: TransferReport, verb: str) -> None:
    print(
        f"{verb} {report.read:,} events: {report.stored:,} stored, "
        f"{report.read - report.stored:,} already there ({report.seconds:.1f} s)"
    )


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    """Store the events of ``args.file`` (``-``: standard input) the store does not hold yet."""
    if args.file == "-":
        report = asyncio.run(_import(sys.stdin.buffer, settings))
    else:
        with open(args.file, "rb") as stream:
            report = asyncio.run(_import(stream, settings))
    _done(report, "read")
    return 0


async def _import(stream: IO[bytes], settings: Settings) -> TransferReport:
    async with connect(settings=_quiet(settings)) as repo:
        return await transfer(
            repo, ndjson_pages(stream), prepare=_preparer(repo), progress=_Shown()
        )


async def run_copy(args: argparse.Namespace, settings: Settings) -> int:
    """Copy every event of ``FROM_URL`` that ``TO_URL`` does not hold yet, with progress."""
    quiet = _quiet(settings)
    async with (
        connect(settings=quiet.updated(database_url=args.from_url)) as source,
        connect(settings=quiet.updated(database_url=args.to_url)) as target,
    ):
        total = (await source.stats()).total
        report = await transfer(
            target,
            store_pages(source),
            total=total,
            prepare=_preparer(target),
            progress=_Shown(),
        )
    _done(report, "copied")
    return 0
