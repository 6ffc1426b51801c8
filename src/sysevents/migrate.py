"""Apply the Alembic migrations that build the PostgreSQL schema.

>>> upgrade("postgresql://localhost/app")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigurationError, StoreError, StoreUnavailableError
from .redact import redact_url

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


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` up to ``revision`` (default: the latest)."""
    _run(database_url, "upgrade", revision)


def downgrade(database_url: str, revision: str) -> None:
    """Take the database at ``database_url`` down to ``revision`` (``"base"``: remove it all)."""
    _run(database_url, "downgrade", revision)
