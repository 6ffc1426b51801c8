"""The ``sysevents`` command: serve, migrate, retention, keys, export, import, copy, tail, seals."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

import sysevents
from sysevents import __version__
from sysevents.errors import ConfigurationError, SyseventsError
from sysevents.redact import redact_url
from sysevents.settings import Settings
from sysevents.upkeep import apply_and_record

from . import keys, moving, seal, search

SERVE_DEFAULT_URL = "sqlite:///sysevents.db"
"""Where ``serve`` keeps events when no database is given: a file in its working directory."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sysevents", description="Record and query system events."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the REST API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default %(default)s)")
    serve.add_argument(
        "--database-url",
        help=f"store URL (default: SYSEVENTS_DATABASE_URL, else {SERVE_DEFAULT_URL} in the "
        "working directory)",
    )
    serve.add_argument("--redis-url", help="Redis URL for the cache (default: SYSEVENTS_REDIS_URL)")
    serve.add_argument(
        "--workers",
        metavar="N",
        help="processes serving the port, or auto for one per core (SYSEVENTS_HTTP_WORKERS, 1)",
    )
    serve.add_argument(
        "--access-log",
        dest="access_log",
        action="store_true",
        default=None,
        help="log a line per request (SYSEVENTS_HTTP_ACCESS_LOG)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="proxies whose X-Forwarded-* headers are believed, comma-separated "
        "(SYSEVENTS_HTTP_FORWARDED_ALLOW_IPS; none by default)",
    )
    limits = serve.add_argument_group(
        "slow and idle clients (defaults: SYSEVENTS_HTTP_* variables, else as shown)"
    )
    limits.add_argument(
        "--header-timeout", type=float, metavar="S", help="seconds for a request's headers (10)"
    )
    limits.add_argument(
        "--body-timeout", type=float, metavar="S", help="seconds for a request's body (30)"
    )
    limits.add_argument(
        "--keep-alive-timeout", type=float, metavar="S", help="idle seconds between requests (5)"
    )
    limits.add_argument(
        "--max-connections", type=int, metavar="N", help="connections open at once (1000)"
    )
    serve.add_argument(
        "--no-console",
        dest="console",
        action="store_false",
        default=None,
        help="do not serve the web console at /ui (SYSEVENTS_HTTP_CONSOLE=false)",
    )
    serve.add_argument(
        "--auth",
        choices=["auto", "required", "off"],
        help="require API keys: auto (default: once a key exists, or beyond this machine), "
        "required, or off (SYSEVENTS_AUTH)",
    )

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.add_argument("--database-url", help="PostgreSQL URL (default: SYSEVENTS_DATABASE_URL)")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.add_argument(
        "--dry-run", action="store_true", help="print what would be done, change nothing"
    )
    retention = commands.add_parser(
        "retention", help="apply the retention policy once and print what it removed"
    )
    retention.add_argument("--database-url", help="store URL (default: SYSEVENTS_DATABASE_URL)")
    retention.add_argument(
        "--redis-url", help="the cache to keep in step (default: SYSEVENTS_REDIS_URL)"
    )
    retention.add_argument("--policy", help="rules SELECTOR=AGE,... (default: SYSEVENTS_RETENTION)")
    retention.add_argument(
        "--dry-run", action="store_true", help="count what would be removed, remove nothing"
    )
    append_only = commands.add_parser(
        "append-only",
        help="make PostgreSQL refuse (on) or allow (off) changes and removals of events",
    )
    append_only.add_argument("state", choices=["on", "off"])
    append_only.add_argument(
        "--database-url", help="PostgreSQL URL (default: SYSEVENTS_DATABASE_URL)"
    )
    keys.add_parser(commands)
    search.add_parsers(commands)
    seal.add_parsers(commands)
    moving.add_parsers(commands)
    return parser


def _serving_store(settings: Settings) -> Settings:
    """``settings`` with the default file when no database was given; says where, on stderr."""
    if "database_url" not in settings.model_fields_set:
        settings = settings.updated(database_url=SERVE_DEFAULT_URL)
    if urlsplit(settings.database_url).scheme.lower() == "sqlite":
        from sysevents.stores.sqlite import path_of

        where = os.path.abspath(path_of(settings.database_url))
        print(f"sysevents: events are kept in {where} ({settings.database_url})", file=sys.stderr)
    return settings


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from sysevents.migrate import plan, upgrade

    if args.database_url is None and settings.database_url == "memory://":
        raise ConfigurationError(
            "which database? pass --database-url postgresql://... or set SYSEVENTS_DATABASE_URL"
        )
    if urlsplit(settings.database_url).scheme.lower() == "sqlite":
        return _migrate_sqlite(settings.database_url, dry_run=args.dry_run)
    if args.dry_run:
        print("\n".join(plan(settings.database_url, args.revision)))
        return 0
    _show_progress()
    upgrade(settings.database_url, args.revision)
    print(f"migrated {redact_url(settings.database_url)} to {args.revision}")
    return 0


def _migrate_sqlite(url: str, *, dry_run: bool) -> int:
    """SQLite files carry their schema version: opening one brings it up to date."""
    from sysevents.stores.sqlite import path_of
    from sysevents.stores.sqlite.schema import SCHEMA_VERSION, file_version, migrate_file

    path = path_of(url)
    found = file_version(path)
    if dry_run:
        print(f"{path}: schema version {found}, up to date at {SCHEMA_VERSION}")
        return 0
    migrate_file(path)
    print(f"migrated {path} from schema version {found} to {SCHEMA_VERSION}")
    return 0


def _show_progress() -> None:
    """What the migrations report as they go (rows moved, rate, time left), on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    progress = logging.getLogger("sysevents.migrate")
    progress.addHandler(handler)
    progress.setLevel(logging.INFO)


async def _retention(settings: Settings, *, dry_run: bool) -> int:
    policy = settings.retention_policy
    if not policy:
        raise ConfigurationError(
            "no retention policy: pass --policy '*=90d,debug=7d' or set SYSEVENTS_RETENTION"
        )
    async with sysevents.connect(settings=settings.updated(fold_interval=0)) as repo:
        if not dry_run:
            await repo.maintain()
        report = await apply_and_record(repo, policy, dry_run=dry_run)
    print("\n".join(report.lines()))
    return 0


async def _append_only(settings: Settings, on: bool) -> int:
    from sysevents.stores.postgres import PostgresEventRepository

    repo = sysevents.connect(settings=settings.updated(fold_interval=0, redis_url=None))
    if not isinstance(repo, PostgresEventRepository):
        raise ConfigurationError(
            "append-only in the database is PostgreSQL's: give a postgresql:// URL"
        )
    async with repo:
        await repo.set_append_only(on)
    print(
        "PostgreSQL now refuses every change and removal of events but retention's"
        if on
        else "PostgreSQL allows changes and removals of events again"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            database_url=getattr(args, "database_url", None),
            redis_url=getattr(args, "redis_url", None),
            auth=getattr(args, "auth", None),
            retention=getattr(args, "policy", None),
        )
        if args.command == "keys":
            return keys.run(args, settings)
        if args.command in ("export", "tail"):
            return search.run(args, settings)
        if args.command == "retention":
            return asyncio.run(_retention(settings, dry_run=args.dry_run))
        if args.command == "import":
            return moving.run_import(args, settings)
        if args.command == "copy":
            return asyncio.run(moving.run_copy(args, settings))
        if args.command == "migrate":
            return _migrate(args, settings)
        if args.command == "append-only":
            return asyncio.run(_append_only(settings, args.state == "on"))
        if args.command == "seal-key":
            return seal.run_seal_key(args, settings)
        if args.command == "verify":
            return seal.run_verify(args, settings)
        try:
            from sysevents_http.config import HttpOptions
            from sysevents_http.serve import run
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f'serving needs the {exc.name!r} package: pip install "sysevents[http]"'
            ) from exc
        options = HttpOptions.from_env(
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            keep_alive_timeout=args.keep_alive_timeout,
            max_connections=args.max_connections,
            console=args.console,
            workers=args.workers,
            access_log=args.access_log,
            forwarded_allow_ips=args.forwarded_allow_ips,
        )
        settings = _serving_store(settings)
        run(settings, host=args.host, port=args.port, options=options)
        return 0
    except SyseventsError as exc:
        print(f"sysevents: {exc}", file=sys.stderr)
        return 2
