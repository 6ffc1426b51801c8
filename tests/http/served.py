"""Run ``sysevents serve`` as a real process on a free port, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .tcp_proxy import free_port

ROOT = Path(__file__).resolve().parents[2]


class Served:
    """A running ``sysevents serve``: its URL, its process, and what it printed so far."""

    def __init__(self, url: str, process: subprocess.Popen[str]) -> None:
        self.url = url
        self.process = process
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        """Everything the server printed (stdout and stderr) until now."""
        return "".join(self._lines)

    def stop(self) -> str:
        """Stop the server; return everything it printed."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        return self.output


@contextlib.contextmanager
def serve_process(*args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """Start ``sysevents serve`` with ``args``; yield it once it answers."""
    port = free_port()
    environ = {**os.environ, **(env or {})}
    environ.setdefault("SYSEVENTS_DATABASE_URL", "memory://")
    command = [sys.executable, "-m", "sysevents", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    served = Served(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                served.stop()
                raise RuntimeError(
                    f"sysevents serve exited with {process.returncode}:\n{served.output}"
                )
            try:
                with urllib.request.urlopen(f"{served.url}/api/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("sysevents serve did not answer within 30 s")
            time.sleep(0.1)
        yield served
    finally:
        served.stop()


@contextlib.contextmanager
def serve(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``sysevents serve`` with ``args``; yield its base URL once it answers."""
    with serve_process(*args, env=env) as served:
        yield served.url
