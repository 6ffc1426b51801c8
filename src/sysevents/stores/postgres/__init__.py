"""The PostgreSQL backend (``pip install "sysevents[postgres]"``).

``pool`` holds the connections and translates driver errors, ``sql`` the
statements, ``rollups`` the planning of statistics over the rollup table,
``inserts`` the ways events are written, and ``store`` the repository itself.
"""

from .store import PostgresEventRepository

__all__ = ["PostgresEventRepository"]
