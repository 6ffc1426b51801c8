"""The SQLite backend (``sqlite:///PATH``), on the standard library's ``sqlite3`` alone."""

from .store import SqliteEventRepository, path_of

__all__ = ["SqliteEventRepository", "path_of"]
