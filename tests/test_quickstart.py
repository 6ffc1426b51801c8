"""The README's quickstart, run as a new user would: copy, install, serve, use."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def command(marker: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)\n```", README, re.S)
    assert match, f"README.md has no {marker}"
    return match.group(1).strip()


def test_the_quickstart_comes_first() -> None:
    quickstart = README.index("## Quickstart")
    assert quickstart < README.index("## The library")
    assert README.index("<!-- serve-command -->") < README.index("<!-- test-command -->")
    assert "serve" in command("serve-command")
    assert "nox" in command("test-command")


def test_ci_runs_the_readmes_own_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in ci
    assert "README.md" in ci


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
def test_the_serve_command_as_written(tmp_path: Path) -> None:
    if not port_is_free(8000):
        pytest.fail("port 8000, which the quickstart uses, is taken", pytrace=False)
    checkout = tmp_path / "sysevents"
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYSEVENTS_", "VIRTUAL_ENV"))}
    server = subprocess.Popen(
        ["bash", "-c", command("serve-command")],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            assert server.poll() is None, server.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
            try:
                if httpx.get("http://127.0.0.1:8000/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.5)
        created = httpx.post(
            "http://127.0.0.1:8000/api/events",
            json={"event_type": "quickstart", "message": "it works"},
        )
        assert created.status_code == 201
        listed = httpx.get("http://127.0.0.1:8000/api/events", params={"event_type": "quickstart"})
        assert listed.json()["total"] == 1
        assert httpx.get("http://127.0.0.1:8000/docs").status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
