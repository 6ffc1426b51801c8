"""Alembic environment for sysevents.

``sysevents.migrate`` hands in an open connection through
``config.attributes["connection"]``; otherwise ``sqlalchemy.url`` is used.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool, text

from sysevents.schema import metadata

VERSION_TABLE = "sysevents_alembic_version"
# Several app instances may migrate at start-up: one at a time.
LOCK_KEY = "sysevents-migrations"

config = context.config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Only compare the tables sysevents owns; the database may hold others."""
    if type_ == "table":
        return name in metadata.tables
    return True


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": LOCK_KEY})
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    given = config.attributes.get("connection")
    if given is not None:
        run_online(given)
    else:
        url = str(config.get_main_option("sqlalchemy.url"))
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.begin() as conn:
            run_online(conn)
        engine.dispose()
