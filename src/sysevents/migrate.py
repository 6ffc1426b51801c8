"""Apply the Alembic migrations that build the PostgreSQL schema.

>>> upgrade("postgresql://localhost/app")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigurationError, StoreError, StoreUnavailableError
from .redact import redact_url

VERSION_TABLE = "sysevents_alembic_version"
CONNECT_TIMEOUT = 10
"""Seconds to wait for the database to accept a connection."""


def find_migrations(package_dir: Path | None = None) -> Path:
    """The directory holding the Alembic migrations.

    Installed from a wheel it is ``sysevents/migrations``; in a source checkout,
    the top-level ``migrations/``. ``package_dir`` stands for the ``sysevents``
    package directory (for tests).
    """
    package = Path(__file__).resolve().parent if package_dir is None else package_dir
    for candidate in (package / "migrations", package.parent.parent / "migrations"):
        if (candidate / "env.py").is_file() and (candidate / "versions").is_dir():
            return candidate
    raise ConfigurationError(
        f"the sysevents migrations are missing: no migrations directory next to {package}"
    )


def _engine(database_url: str) -> Any:
    from sqlalchemy import create_engine, pool
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(database_url)
        url.port  # noqa: B018 - a port that is not a number fails here
    except (ArgumentError, ValueError):
        raise ConfigurationError(
            f"the database URL {redact_url(database_url)} is not a valid URL "
            "(expected postgresql://user@host:port/database)"
        ) from None
    backend, _, driver = url.drivername.partition("+")
    if backend not in ("postgresql", "postgres") or driver not in ("", "psycopg"):
        raise ConfigurationError(
            f"migrations apply to PostgreSQL only, not {url.drivername}:// "
            "(use a postgresql:// URL)"
        )
    url = url.set(drivername="postgresql+psycopg")
    try:
        return create_engine(
            url,
            poolclass=pool.NullPool,
            connect_args={"connect_timeout": CONNECT_TIMEOUT},
        )
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot use the database URL {redact_url(database_url)}: {type(exc).__name__}"
        ) from None


def _run(database_url: str, action: str, revision: str) -> None:
    try:
        from alembic import command
        from alembic.config import Config
        from alembic.util import CommandError
        from sqlalchemy import exc as sa_exc
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f'migrations need the {exc.name!r} package: pip install "sysevents[postgres]"'
        ) from exc

    engine = _engine(database_url)
    where = engine.url.render_as_string(hide_password=True)
    config = Config()
    config.set_main_option("script_location", str(find_migrations()))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    except CommandError as exc:
        raise ConfigurationError(f"cannot migrate to {revision!r}: {exc}") from exc
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise StoreUnavailableError(f"cannot reach {where}: {exc.orig or exc}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise StoreError(f"migrating {where} failed: {exc}") from exc
    finally:
        engine.dispose()


PARTITIONING = ("0005", "0006")
"""The two revisions between which the rows move to the partitioned table."""


def current_revision(database_url: str) -> str | None:
    """The revision the database is at; ``None`` before the first migration."""
    from alembic.migration import MigrationContext
    from sqlalchemy import exc as sa_exc

    engine = _engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise StoreUnavailableError(f"cannot reach {where}: {exc.orig or exc}") from exc
    finally:
        engine.dispose()


def _pending(current: str | None, revision: str) -> list[Any]:
    """The scripts from ``current`` (exclusive) up to ``revision``, oldest first."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    scripts = ScriptDirectory(str(find_migrations()))
    try:
        walked = list(scripts.walk_revisions(base=current or "base", head=revision))
    except CommandError as exc:
        raise ConfigurationError(f"cannot migrate to {revision!r}: {exc}") from exc
    return [s for s in reversed(walked) if s.revision != current]


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` up to ``revision`` (default: the latest).

    Partitioning an existing ``system_events`` (revisions 0005 and 0006)
    moves its rows in batches between the two, with progress logged on the
    ``sysevents.migrate`` logger; the table stays writable meanwhile.
    """
    current = current_revision(database_url)
    steps = [s.revision for s in _pending(current, revision)]
    if PARTITIONING[1] in steps:
        from .stores.postgres.move import move_rows

        if PARTITIONING[0] in steps:
            _run(database_url, "upgrade", PARTITIONING[0])
        move_rows(database_url)
    _run(database_url, "upgrade", revision)


def plan(database_url: str, revision: str = "head") -> list[str]:
    """What ``upgrade`` would do, as lines of text; changes nothing."""
    current = current_revision(database_url)
    scripts = _pending(current, revision)
    if not scripts:
        return [f"at {current}: nothing to do"]
    lines = [f"at {current or 'an empty database'}; would apply:"]
    for script in scripts:
        lines.append(f"  {script.revision}: {(script.doc or '').splitlines()[0]}")
    if any(s.revision == PARTITIONING[1] for s in scripts):
        lines += _partition_plan(database_url)
    return lines


def _partition_plan(database_url: str) -> list[str]:
    import psycopg

    from .stores.postgres.move import BATCH
    from .stores.postgres.pool import conninfo

    with psycopg.connect(conninfo(database_url), autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('system_events') IS NOT NULL").fetchone()
        if not (exists and exists[0]):
            return ["  the table is made empty and partitioned: no events to move"]
        row = conn.execute(
            "SELECT CASE WHEN reltuples > 0 THEN reltuples::bigint "
            "ELSE (SELECT count(*) FROM system_events) END, "
            '(SELECT min("timestamp") FROM system_events), '
            '(SELECT max("timestamp") FROM system_events) FROM pg_class '
            "WHERE oid = 'system_events'::regclass"
        ).fetchone()
    if row is None:
        return []
    rows, oldest, newest = row
    span = f"from {oldest:%Y-%m} to {newest:%Y-%m}" if oldest and newest else "none yet"
    return [
        f"  about {rows:,} event(s) to move into monthly partitions (events {span}), "
        f"{BATCH:,} per transaction, the table writable meanwhile; then a short lock to switch"
    ]


def downgrade(database_url: str, revision: str) -> None:
    """Take the database at ``database_url`` down to ``revision`` (``"base"``: remove it all)."""
    _run(database_url, "downgrade", revision)
