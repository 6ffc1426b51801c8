"""The deployment files: compose.yaml names its services and their order; the Dockerfile's
commands build, install and start the API (run here in a fresh virtual environment, since
no image can be pulled)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import skip_or_fail, uv_command
from tests.http.tcp_proxy import free_port

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_compose_names_the_services_and_their_order() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api"}
    assert services["migrate"]["command"] == ["sysevents", "migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    api = services["api"]["depends_on"]
    assert api["migrate"]["condition"] == "service_completed_successfully"
    assert api["postgres"]["condition"] == "service_healthy"
    assert api["redis"]["condition"] == "service_healthy"
    for name in ("migrate", "api"):
        environment = services[name]["environment"]
        assert environment["SYSEVENTS_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in environment["SYSEVENTS_DATABASE_URL"]
        assert environment["SYSEVENTS_REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["build"] == "."
    assert services["api"]["ports"] == ["8000:8000"]


def test_the_dockerfile_is_multi_stage_non_root_and_checks_health() -> None:
    steps = instructions()
    assert len([rest for word, rest in steps if word == "FROM"]) >= 2  # multi-stage
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in steps)
    users = [rest for word, rest in steps if word == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    (check,) = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert "/api/health" in check


@pytest.mark.slow
def test_the_dockerfile_commands_build_install_and_serve(tmp_path: Path) -> None:
    uv = uv_command()
    if uv is None:
        skip_or_fail("uv is needed to make a fresh virtual environment")
        return
    steps = instructions()
    runs = [rest for word, rest in steps if word == "RUN"]
    (build,) = [r for r in runs if "pip wheel" in r]
    (install,) = [r for r in runs if "pip install" in r]
    (check,) = [rest for word, rest in steps if word == "HEALTHCHECK"]
    cmd = json.loads([rest for word, rest in steps if word == "CMD"][-1])
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", "--seed", "--python", sys.executable, str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
    wheels = tmp_path / "wheels"

    def shell(command: str, cwd: Path) -> None:
        done = subprocess.run(
            ["bash", "-euc", command.replace("/wheels", str(wheels))],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    shell(build, ROOT)
    shell(install, tmp_path)
    assert not wheels.exists()  # the install step cleans up after itself
    # Serve as the image would, on a loopback port of this machine.
    port = free_port()
    args = [*cmd]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    server = subprocess.Popen(
        [str(venv / "bin" / args[0]), *args[1:]],
        env={**env, "SYSEVENTS_DATABASE_URL": "memory://"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as r:
                    assert json.load(r)["status"] == "ok"
                    break
            except OSError:
                assert server.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not answer in 60 s"
                time.sleep(0.2)
        # The image's health check, pointed at this port.
        probe = json.loads(check.split("CMD", 1)[1].strip())
        probe = [p.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for p in probe]
        done = subprocess.run([str(venv / "bin" / probe[0]), *probe[1:]], timeout=30)
        assert done.returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert shlex.split(install)[0] == "pip"
