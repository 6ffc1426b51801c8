"""A private ``redis-server`` for tests that stop, restart or freeze Redis.

It listens on a free port on 127.0.0.1, keeps nothing on disk, and is always
killed when the context ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

from tests.conftest import skip_or_fail


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateRedis:
    """One ``redis-server`` process that the test controls."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) the server on the same port, empty."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.directory,
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """Kill the server at once; its data is lost."""
        if self.process is None:
            return
        if self.paused:
            self.resume()
        self.process.kill()
        self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        """Kill and start again on the same port (empty)."""
        self.kill()
        self.start()

    def pause(self) -> None:
        """Freeze the process: it still accepts TCP connections but never answers."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """Let a paused server run again, with all its data."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    """A running private Redis, killed and removed afterwards; skips without the binary."""
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not on PATH")
    directory = tempfile.mkdtemp(prefix="sysevents-redis-")
    server = PrivateRedis(directory)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)
