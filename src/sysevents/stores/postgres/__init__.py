"""The PostgreSQL backend (``pip install "sysevents[postgres]"``).

``pool`` holds the connections (keeping a share for writes), ``driver``
translates driver errors, ``sql`` the statements, ``tail`` and ``fanout`` the
live tails (one reader per repository), ``rollups`` the planning of statistics
over the rollup table, ``inserts`` the ways events are written, and ``store``
the repository itself.
"""

from .store import PostgresEventRepository

__all__ = ["PostgresEventRepository"]
