"""The emitter on a thread and event loop of its own, for programs without one."""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from sysevents.store import EventRepository

from .lifecycle import chain_sigterm, follow_forks
from .queue import EmitterCounters


class Emitter(Protocol):
    """What runs on the thread: an :class:`~sysevents.EventLogger`."""

    @property
    def repo(self) -> EventRepository:
        """The store it writes to."""

    @property
    def emit(self) -> Callable[..., bool]:
        """Queue one event (see :meth:`sysevents.EventLogger.emit`)."""

    @property
    def counters(self) -> EmitterCounters:
        """What the emitter has done so far."""

    async def start(self) -> None:
        """Start storing in the background."""

    async def flush(self) -> None:
        """Wait until every event emitted so far is stored."""

    async def aclose(self, drain: float | None = None) -> None:
        """Store what is left, then stop."""


# What a fork child inherits from its parent's emitters: kept referenced and
# never closed there, since closing would end the parent's connections.
_inherited: list[Any] = []


class ThreadedEventLogger:
    """An :class:`EventLogger` on a private thread and loop; ``emit()`` from anywhere.

    ``open_repo`` creates the (unopened) repository on that thread. At
    interpreter exit and on SIGTERM the emitter stores what it holds for at
    most ``drain_timeout`` seconds (an option of :class:`EventLogger`, default
    2) and writes the rest to stdout. In a process forked from this one it
    starts afresh, with a repository of its own, on the first ``emit()``.
    """

    def __init__(
        self,
        open_repo: Callable[[], EventRepository],
        make_emitter: Callable[..., Emitter],
        **options: Any,
    ) -> None:
        self._open_repo = open_repo
        self._make_emitter = make_emitter
        self._options = {**options, "handle_sigterm": False}  # the SIGTERM handler is ours
        self.drain_timeout: float = options.get("drain_timeout", 2.0)
        self._restart_lock = threading.Lock()
        self._forked = False
        self._start_thread()
        atexit.register(self.close)
        if options.get("handle_sigterm", True):
            chain_sigterm(self.close)
        follow_forks(self)

    def _start_thread(self) -> None:
        self._started = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._error: BaseException | None = None
        self.emitter: Emitter | None = None
        self._thread = threading.Thread(target=self._main, name="sysevents-emitter", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            repo = self._open_repo()
            self._loop.run_until_complete(repo.open())
            self.emitter = self._make_emitter(repo, **self._options)
            self._loop.run_until_complete(self.emitter.start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def after_fork_in_child(self) -> None:
        """In a fork child: the thread is gone; start a new one on the next ``emit()``."""
        _inherited.append((self._loop, self.emitter))
        self._restart_lock = threading.Lock()
        self._forked = True

    def _restart_in_child(self) -> None:
        with self._restart_lock:
            if self._forked:
                self._start_thread()  # the parent's queue stays the parent's
                self._forked = False

    def _call(self, coro: Coroutine[Any, Any, None], timeout: float | None) -> None:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        future.result(timeout)

    def emit(self, event_type: str, message: str, **fields: Any) -> bool:
        """Queue one event (see :meth:`EventLogger.emit`)."""
        if self._forked:
            self._restart_in_child()
        assert self.emitter is not None
        return self.emitter.emit(event_type, message, **fields)

    @property
    def counters(self) -> EmitterCounters:
        """The emitter's counters."""
        assert self.emitter is not None
        return self.emitter.counters

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event emitted so far is stored or sent to stdout.

        Once closed there is nothing left to wait for (``logging.shutdown()``
        flushes handlers after the exit hook has closed their emitter).
        """
        assert self.emitter is not None
        if self._forked or not self._thread.is_alive() or self._loop.is_closed():
            return
        self._call(self.emitter.flush(), timeout)

    def close(self, timeout: float | None = None) -> None:
        """Store what is queued, stop the emitter, close the repository and the thread.

        What is not stored within ``timeout`` seconds (default: ``drain_timeout``)
        goes to stdout. Safe to call twice.
        """
        if self._forked or not self._thread.is_alive() or self.emitter is None:
            return
        emitter = self.emitter
        drain = self.drain_timeout if timeout is None else timeout

        async def shutdown() -> None:
            try:
                await emitter.aclose(drain=drain)
            finally:
                await emitter.repo.close()

        try:
            # The repository's close is bounded by its own timeouts; a margin for it.
            self._call(shutdown(), drain + 5.0)
        except TimeoutError:  # pragma: no cover - a repository that would not close
            pass
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5.0)
            if not self._thread.is_alive():
                self._loop.close()
            atexit.unregister(self.close)
