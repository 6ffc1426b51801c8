"""The ``sysevents`` console command: ``serve`` and ``migrate``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .errors import ConfigurationError, SyseventsError
from .settings import Settings


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
        "--database-url", help="store URL (default: SYSEVENTS_DATABASE_URL, else memory://)"
    )
    serve.add_argument("--redis-url", help="Redis URL for the cache (default: SYSEVENTS_REDIS_URL)")

    migrate = commands.add_parser("migrate", help="apply the database migrations")
    migrate.add_argument("--database-url", help="PostgreSQL URL (default: SYSEVENTS_DATABASE_URL)")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env(
            database_url=args.database_url, redis_url=getattr(args, "redis_url", None)
        )
        if args.command == "migrate":
            from .migrate import upgrade

            if args.database_url is None and settings.database_url == "memory://":
                raise ConfigurationError(
                    "which database? pass --database-url postgresql://... "
                    "or set SYSEVENTS_DATABASE_URL"
                )

            upgrade(settings.database_url, args.revision)
            print(f"migrated {settings.database_url.split('@')[-1]} to {args.revision}")
            return 0
        try:
            from sysevents_http.serve import run
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f'serving needs the {exc.name!r} package: pip install "sysevents[http]"'
            ) from exc
        run(settings, host=args.host, port=args.port)
        return 0
    except SyseventsError as exc:
        print(f"sysevents: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
