"""``sysevents export`` and ``sysevents tail``: events out of a store, as a file or as they come."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, BinaryIO

from pydantic import ValidationError

from sysevents._connect import connect
from sysevents.errors import InvalidEventError
from sysevents.export import csv_rows, event_pages, ndjson
from sysevents.query import EventFilter
from sysevents.search import parse_details_value
from sysevents.settings import Settings


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="the store: postgresql://, http(s):// (default: SYSEVENTS_DATABASE_URL)",
    )
    parser.add_argument("--type", action="append", dest="event_type", help="an event type (repeat)")
    parser.add_argument("--severity", action="append", help="a severity (repeat)")
    parser.add_argument("--min-severity", help="this severity and above")
    parser.add_argument("--source", help="only events from this source")
    parser.add_argument("--since", help="from this time (ISO 8601 with offset)")
    parser.add_argument("--until", help="before this time (ISO 8601 with offset)")
    parser.add_argument("--q", help="text the message contains, ignoring case")
    parser.add_argument(
        "--detail",
        action="append",
        metavar="PATH=VALUE",
        help="details.PATH equals VALUE (JSON, else text); repeat for several",
    )


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``export`` and ``tail`` commands."""
    export = commands.add_parser("export", help="write every matching event, NDJSON or CSV")
    _filters(export)
    export.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    export.add_argument("--order", choices=["oldest", "newest"], default="oldest")
    export.add_argument("--output", "-o", help="a file to write (default: standard output)")
    tail = commands.add_parser("tail", help="print new matching events as they are stored")
    _filters(tail)
    tail.add_argument("--after", help="a position printed before: continue just after it")
    tail.add_argument("--json", action="store_true", help="one JSON line per event")
    tail.add_argument(
        "--positions", action="store_true", help="print each event's position first (for --after)"
    )


def query_of(args: argparse.Namespace) -> EventFilter:
    """The filters given on the command line; ``InvalidEventError`` naming a bad one."""
    fields: dict[str, Any] = {
        "event_type": args.event_type,
        "severity": args.severity,
        "min_severity": args.min_severity,
        "source": args.source,
        "since": args.since,
        "until": args.until,
        "q": args.q,
    }
    details = {}
    for item in args.detail or ():
        path, sep, value = item.partition("=")
        if not sep:
            raise InvalidEventError(
                [{"loc": ("--detail",), "msg": f"{item!r} is not PATH=VALUE", "type": "value"}]
            )
        details[path] = parse_details_value(value)
    if details:
        fields["details"] = details
    try:
        return EventFilter(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise InvalidEventError(
            [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        ) from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``export`` or ``tail``."""
    query = query_of(args)
    try:
        if args.command == "export":
            if args.output:
                with open(args.output, "wb") as out:
                    return asyncio.run(_export(settings, query, args, out))
            return asyncio.run(_export(settings, query, args, sys.stdout.buffer))
        return asyncio.run(_tail(settings, query, args))
    except KeyboardInterrupt:
        return 130


async def _export(
    settings: Settings, query: EventFilter, args: argparse.Namespace, out: BinaryIO
) -> int:
    async with connect(settings=settings.updated(fold_interval=0)) as repo:
        if args.format == "csv":
            out.write(csv_rows([]))
        async for page in event_pages(repo, query, order=args.order):
            out.write(csv_rows(page, header=False) if args.format == "csv" else ndjson(page))
    out.flush()
    return 0


async def _tail(settings: Settings, query: EventFilter, args: argparse.Namespace) -> int:
    async with connect(settings=settings.updated(fold_interval=0)) as repo:
        async for item in repo.follow(query, after=args.after):
            event = item.event
            assert event is not None
            if args.json:
                line = event.model_dump_json()
            else:
                line = (
                    f"{event.timestamp.isoformat()} {event.severity.value:<8} "
                    f"{event.event_type} {event.source or '-'}: {event.message}"
                )
            if args.positions:
                line = f"{item.position} {line}"
            print(line, flush=True)
    return 0
