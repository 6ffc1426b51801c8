"""The SQLite file's tables, made (and brought up to date) when a store opens it.

Times are integers of microseconds since 1970 (UTC), so that comparisons and
buckets are integer arithmetic. ``message_lower`` is the message as Python's
``str.lower()`` gives it, the rule of ``q`` for every store (see
``sysevents.search``); the FTS5 table indexes it with the trigram tokenizer
(case-sensitive: the folding is done already, the same as elsewhere).

``key_caller`` holds the caller that owns the row's idempotency key while the
key is remembered; forgetting a key sets it to NULL. Counts per hour, event
type, severity and source (``rollups``), and per event type, severity and
source over all time (``series``), are kept by triggers in the writing
transaction: statistics read them, so their cost does not grow with the table.

``PRAGMA user_version`` says which version of this schema a file has; opening
an older file brings it up to date (the steps are in :data:`STEPS`).
"""

from __future__ import annotations

import os
import secrets
import sqlite3

__all__ = ["SCHEMA_VERSION", "file_version", "migrate", "migrate_file"]

_TABLES = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT,
    source TEXT,
    ts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    idempotency_key TEXT,
    trace_id TEXT,
    span_id TEXT,
    written_by TEXT,
    key_caller TEXT,
    message_lower TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts, id);
CREATE INDEX IF NOT EXISTS events_type_ts ON events (event_type, ts, id);
CREATE INDEX IF NOT EXISTS events_source_ts ON events (source, ts, id) WHERE source IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_trace ON events (trace_id) WHERE trace_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS events_key
    ON events (key_caller, idempotency_key) WHERE key_caller IS NOT NULL;

CREATE VIRTUAL TABLE IF NOT EXISTS events_text USING fts5(
    message_lower, content='events', content_rowid='id', tokenize='trigram case_sensitive 1'
);

CREATE TABLE IF NOT EXISTS rollups (
    hour INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    source TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (hour, event_type, severity, source)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollups_type ON rollups (event_type, hour);

CREATE TABLE IF NOT EXISTS series (
    event_type TEXT NOT NULL,
    severity TEXT NOT NULL,
    source TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (event_type, severity, source)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS events_added AFTER INSERT ON events BEGIN
    INSERT INTO events_text (rowid, message_lower) VALUES (new.id, new.message_lower);
    INSERT INTO rollups VALUES
        (new.ts / 3600000000, new.event_type, new.severity, ifnull(new.source, ''), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
    INSERT INTO series VALUES (new.event_type, new.severity, ifnull(new.source, ''), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS events_removed AFTER DELETE ON events BEGIN
    INSERT INTO events_text (events_text, rowid, message_lower)
        VALUES ('delete', old.id, old.message_lower);
    UPDATE rollups SET n = n - 1 WHERE hour = old.ts / 3600000000
        AND event_type = old.event_type AND severity = old.severity
        AND source = ifnull(old.source, '');
    UPDATE series SET n = n - 1 WHERE event_type = old.event_type
        AND severity = old.severity AND source = ifnull(old.source, '');
END;
CREATE TRIGGER IF NOT EXISTS events_counted_again
    AFTER UPDATE OF event_type, severity, source, ts ON events BEGIN
    UPDATE rollups SET n = n - 1 WHERE hour = old.ts / 3600000000
        AND event_type = old.event_type AND severity = old.severity
        AND source = ifnull(old.source, '');
    INSERT INTO rollups VALUES
        (new.ts / 3600000000, new.event_type, new.severity, ifnull(new.source, ''), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
    UPDATE series SET n = n - 1 WHERE event_type = old.event_type
        AND severity = old.severity AND source = ifnull(old.source, '');
    INSERT INTO series VALUES (new.event_type, new.severity, ifnull(new.source, ''), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS events_text_changed AFTER UPDATE OF message_lower ON events BEGIN
    INSERT INTO events_text (events_text, rowid, message_lower)
        VALUES ('delete', old.id, old.message_lower);
    INSERT INTO events_text (rowid, message_lower) VALUES (new.id, new.message_lower);
END;

CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    digest BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS digests (
    seq INTEGER PRIMARY KEY,
    after_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    count INTEGER NOT NULL,
    min_id INTEGER NOT NULL,
    max_id INTEGER NOT NULL,
    events_sha256 BLOB NOT NULL,
    previous BLOB NOT NULL,
    sealed_at INTEGER NOT NULL,
    next_xid INTEGER NOT NULL,
    key TEXT NOT NULL,
    signature BLOB,
    entries BLOB NOT NULL
);
"""

STEPS: tuple[str, ...] = (_TABLES,)
"""The schema's versions: step ``i`` takes a file from version ``i`` to ``i + 1``."""
SCHEMA_VERSION = len(STEPS)
"""The version this code writes and reads."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file of ``conn`` to :data:`SCHEMA_VERSION`; the version it had.

    One process at a time (``BEGIN IMMEDIATE``); a file newer than this code
    is refused rather than misread.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"the file has schema version {found}; this sysevents knows up to {SCHEMA_VERSION}"
            )
        for step in STEPS[found:]:
            for statement in _statements(step):
                conn.execute(statement)
        conn.execute(
            "INSERT OR IGNORE INTO secrets VALUES ('cursor', ?)", (secrets.token_urlsafe(32),)
        )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def _statements(script: str) -> list[str]:
    """``script`` cut into whole statements (a trigger's body holds semicolons)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return [s for s in out if s]


def file_version(path: str) -> int:
    """The schema version of the file at ``path`` (0: none yet, or no file)."""
    if not os.path.exists(path):
        return 0
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def migrate_file(path: str) -> int:
    """Bring the file at ``path`` (made if missing) up to date, in WAL mode; its old version."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        return migrate(conn)
    finally:
        conn.close()
