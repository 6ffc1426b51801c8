"""The SQLite file's connections: one writer thread that commits in groups, a few readers.

Every call to ``sqlite3`` runs on a thread of this module, never on the
event loop. Writes are jobs queued to the one writer thread: it takes every
job waiting (up to :data:`GROUP`), runs each in a savepoint of one
``BEGIN IMMEDIATE`` transaction and commits once, so concurrent writers share
a commit (and its ``fsync``). A job that fails rolls back to its savepoint
alone. Reads run on a small pool of threads, each with its own connection, in
a read transaction (one snapshot per call).

The file is in WAL mode: readers never wait for the writer, nor it for them;
a thread of its own copies the WAL back into the file every
:data:`CHECKPOINT_EVERY` seconds (``PASSIVE``: it never waits for either), so
that no commit pays for a checkpoint.
Other processes writing the same file are waited for (``busy_timeout``,
then retries up to ``timeout``): "database is locked" never reaches a
caller, a store that stays locked longer raises ``StoreUnavailableError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sysevents.errors import ConfigurationError, StoreUnavailableError
from sysevents.search import json_equal

from .schema import migrate
from .where import details_equal

log = logging.getLogger("sysevents.stores.sqlite")
T = TypeVar("T")
GROUP = 256
"""The most jobs one transaction commits together."""
READERS = 4
"""Threads (and connections) that read."""
CHECKPOINT_EVERY = 0.5
"""Seconds between two checkpoints of the WAL (when something was written)."""


def _json_equal(found: str | None, wanted: str) -> bool:
    """SQL ``sysevents_json_equal(json_text, json_text)``: JSON equality (``sysevents.search``)."""
    if found is None:
        return False
    return json_equal(json.loads(found), json.loads(wanted))


def _busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


@dataclass
class _Job:
    work: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class Database:
    """The file at ``path``: ``await db.write(fn)`` and ``await db.read(fn)`` run ``fn(conn)``."""

    def __init__(self, path: str, timeout: float, synchronous: str = "FULL") -> None:
        self.path = path
        self.timeout = timeout
        self.synchronous = synchronous
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._checkpoints: threading.Thread | None = None
        self._stop = threading.Event()
        self._written = threading.Event()
        self.on_commit: Callable[[], None] = lambda: None
        """Called on the writer thread after each commit that wrote something."""

    @property
    def running(self) -> bool:
        """Whether the threads run (between ``open`` and ``close``)."""
        return self._writer is not None

    def connect(self) -> sqlite3.Connection:
        """A new connection to the file, set up as every connection of a store is."""
        conn = sqlite3.connect(
            self.path,
            timeout=min(self.timeout, 5.0),
            isolation_level=None,  # transactions are begun here, explicitly
            check_same_thread=False,
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.create_function("sysevents_json_equal", 2, _json_equal, deterministic=True)
        conn.create_function("sysevents_details_equal", 3, details_equal, deterministic=True)
        with self._lock:
            self._connections.append(conn)
        return conn

    async def open(self) -> None:
        """Create or update the file's tables, then start the writer and the readers."""
        if self._writer is not None:
            return
        await asyncio.to_thread(self._prepare)
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="sysevents-sqlite-read")
        self._writer = threading.Thread(
            target=self._write_loop, name="sysevents-sqlite-write", daemon=True
        )
        self._writer.start()
        self._checkpoints = threading.Thread(
            target=self._checkpoint_loop, name="sysevents-sqlite-checkpoint", daemon=True
        )
        self._checkpoints.start()

    def _prepare(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise ConfigurationError(f"no directory {directory!r} for the SQLite file")
        conn = self.connect()
        try:
            self._retrying(lambda: migrate(conn))
        finally:
            self._forget(conn)

    def _forget(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            self._connections.remove(conn)
        conn.close()

    async def close(self) -> None:
        """Finish the queued writes, stop the threads and close every connection."""
        writer, self._writer = self._writer, None
        readers, self._readers = self._readers, None
        if writer is not None:
            self._queue.put(None)
            await asyncio.to_thread(writer.join)
        checkpoints, self._checkpoints = self._checkpoints, None
        if checkpoints is not None:
            self._stop.set()
            await asyncio.to_thread(checkpoints.join)
            self._stop.clear()
        if readers is not None:
            await asyncio.to_thread(readers.shutdown, True)
        with self._lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # -- reads ----------------------------------------------------------------

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)`` on a reader thread, in one read transaction."""
        readers = self._readers
        if readers is None:
            raise StoreUnavailableError("the SQLite store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(readers, self._read, work)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()

        def attempt() -> T:
            assert conn is not None
            conn.execute("BEGIN")
            try:
                return work(conn)
            finally:
                conn.execute("COMMIT")

        return self._retrying(attempt)

    # -- writes ---------------------------------------------------------------

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(conn)`` in the writer's next transaction; its result once committed."""
        if self._writer is None:
            raise StoreUnavailableError("the SQLite store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(work, future, loop))
        return await future

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the file beside the writer, so that its commits never do it."""
        conn = self.connect()
        while not self._stop.wait(CHECKPOINT_EVERY):
            if self._written.is_set():
                self._written.clear()
                with contextlib.suppress(sqlite3.Error):  # busy: the next round does it
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _write_loop(self) -> None:
        conn = self.connect()
        # Checkpoints are the checkpoint thread's (see above), not a commit's.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            jobs = [first]
            while len(jobs) < GROUP:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
            self._commit(conn, jobs)
        # A write queued while closing finds the store closed rather than no answer.
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                _answer(job, False, StoreUnavailableError("the SQLite store is closed"))

    def _commit(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            self._retrying(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                for job in jobs:
                    outcomes.append(_run_job(conn, job, savepoint=len(jobs) > 1))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except Exception as exc:
            error = _unavailable(exc)
            outcomes = [(False, error)] * len(jobs)
        if any(ok for ok, _ in outcomes):
            self._written.set()
            try:
                self.on_commit()
            except Exception:  # pragma: no cover - a waker never fails a write
                log.exception("waking the tails failed")
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            _answer(job, ok, value)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, again while another process holds the file, up to ``timeout``."""
        deadline = time.monotonic() + self.timeout
        pause = 0.005
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() + pause > deadline:
                    raise _unavailable(exc) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def _run_job(conn: sqlite3.Connection, job: _Job, savepoint: bool) -> tuple[bool, Any]:
    if job.future.cancelled():
        return False, asyncio.CancelledError()
    if savepoint:
        conn.execute("SAVEPOINT job")
    try:
        value = job.work(conn)
    except Exception as exc:
        if savepoint and not conn.in_transaction:
            # The error ended the whole transaction (SQLite does for some):
            # the group fails with it.
            raise
        if savepoint:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
        elif isinstance(exc, sqlite3.Error):
            raise
        else:
            raise _Failed(exc) from exc
        return False, _unavailable(exc) if isinstance(exc, sqlite3.Error) else exc
    if savepoint:
        conn.execute("RELEASE job")
    return True, value


class _Failed(Exception):
    """A lone job's own error: the transaction is rolled back and the error is its answer."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _unavailable(exc: BaseException) -> BaseException:
    if isinstance(exc, _Failed):
        return exc.error
    if isinstance(exc, sqlite3.Error):
        return StoreUnavailableError(f"SQLite: {exc}")
    return exc


def _answer(job: _Job, ok: bool, value: Any) -> None:
    with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
        job.loop.call_soon_threadsafe(_settle, job.future, ok, value)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
