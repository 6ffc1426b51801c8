"""Run ``sysevents serve`` as a real process on a free port, for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .tcp_proxy import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def serve(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``sysevents serve`` with ``args``; yield its base URL once it answers."""
    port = free_port()
    environ = {**os.environ, **(env or {})}
    environ.setdefault("SYSEVENTS_DATABASE_URL", "memory://")
    command = [sys.executable, "-m", "sysevents.cli", "serve", "--port", str(port), *args]
    process = subprocess.Popen(
        command,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"sysevents serve exited with {process.returncode}:\n{output}")
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("sysevents serve did not answer within 30 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
