"""The emitter on a thread and event loop of its own, for programs without one."""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from sysevents.repository import EventRepository

from .logger import EmitterCounters, EventLogger


class ThreadedEventLogger:
    """An :class:`EventLogger` on a private thread and loop; ``emit()`` from anywhere."""

    def __init__(self, open_repo: Callable[[], EventRepository], **options: Any) -> None:
        self._started = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._open_repo = open_repo
        self._options = options
        self._error: BaseException | None = None
        self.emitter: EventLogger | None = None
        self._thread = threading.Thread(target=self._main, name="sysevents-emitter", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        atexit.register(self.close)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            repo = self._open_repo()
            self._loop.run_until_complete(repo.open())
            self.emitter = EventLogger(repo, **self._options)
            self._loop.run_until_complete(self.emitter.start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()

    def _call(self, coro: Coroutine[Any, Any, None], timeout: float | None) -> None:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        future.result(timeout)

    def emit(self, event_type: str, message: str, **fields: Any) -> bool:
        """Queue one event (see :meth:`EventLogger.emit`)."""
        assert self.emitter is not None
        return self.emitter.emit(event_type, message, **fields)

    @property
    def counters(self) -> EmitterCounters:
        """The emitter's counters."""
        assert self.emitter is not None
        return self.emitter.counters

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event emitted so far is stored or sent to stdout."""
        assert self.emitter is not None
        self._call(self.emitter.flush(), timeout)

    def close(self) -> None:
        """Flush, stop the emitter, close the repository and the thread; safe twice."""
        if not self._thread.is_alive() or self.emitter is None:
            return
        emitter = self.emitter

        async def shutdown() -> None:
            await emitter.aclose()
            await emitter.repo.close()

        try:
            self._call(shutdown(), None)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            atexit.unregister(self.close)
