"""The end of a process and its forks: SIGTERM handlers that chain, hooks for fork children.

A library must not take a signal away from its host: every handler installed
here runs its own drain first, then gives the signal to whatever handled it
before (the default action, exit, included).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import weakref
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any, Protocol

logger = logging.getLogger("sysevents.emitter")

SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


def _pass_on(previous: SignalHandler, signum: int, frame: FrameType | None) -> None:
    """Give the signal to the handler that was there before ours."""
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    # The default action (for SIGTERM: exit), as if we had never been there.
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def chain_sigterm(drain: Callable[[], None]) -> bool:
    """On SIGTERM run ``drain()``, then the previous handler; ``False`` off the main thread.

    A SIGTERM the host ignores stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        return False

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, previous)  # once: a second SIGTERM is the host's
        try:
            drain()
        except Exception:  # pragma: no cover - the host's handler must still run
            logger.exception("draining the emitter on SIGTERM failed")
        _pass_on(previous, signum, frame)

    signal.signal(signal.SIGTERM, handler)
    return True


def chain_sigterm_on_loop(
    loop: asyncio.AbstractEventLoop, drain: Callable[[], Coroutine[Any, Any, None]]
) -> bool:
    """On SIGTERM await ``drain()`` on ``loop``, then the previous handler.

    Only for a loop running on the main thread; ``False`` otherwise.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        return False

    async def terminate() -> None:
        try:
            await drain()
        except Exception:  # pragma: no cover - the host's handler must still run
            logger.exception("draining the emitter on SIGTERM failed")
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, previous)
            _pass_on(previous, signal.SIGTERM, None)

    tasks: set[asyncio.Task[None]] = set()

    def on_signal() -> None:
        task = loop.create_task(terminate())
        tasks.add(task)  # held until it ends
        task.add_done_callback(tasks.discard)

    try:
        loop.add_signal_handler(signal.SIGTERM, on_signal)
    except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - no signals
        return False
    return True


class ForkAware(Protocol):
    """Something that must start afresh in a child process after ``fork()``."""

    def after_fork_in_child(self) -> None:
        """Drop what belongs to the parent; start again lazily."""


_fork_aware: weakref.WeakSet[Any] = weakref.WeakSet()
_hook_registered = False


def _after_fork() -> None:
    for thing in list(_fork_aware):
        thing.after_fork_in_child()


def follow_forks(thing: ForkAware) -> None:
    """Call ``thing.after_fork_in_child()`` in every child this process forks."""
    global _hook_registered
    if not _hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)
        _hook_registered = True
    _fork_aware.add(thing)
