"""The ``client`` extra: the HTTP client backend and the emitter, with no server package."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sysevents import MemoryEventRepository, Settings
from sysevents.keys import Scope
from sysevents_http import create_app
from tests.conftest import skip_or_fail, uv_command
from tests.http.live import LiveApp

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SERVER_PACKAGES = {
    "litestar",
    "uvicorn",
    "swagger-ui-bundle-v2",
    "faker",
    "polyfactory",
    "prometheus-client",
    "opentelemetry-proto",
    "psycopg",
    "redis",
    "sqlalchemy",
}


def run(*command: str, timeout: float = 600) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def client_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the built wheel's ``[client]`` extra; its Python."""
    uv = uv_command()
    if uv is None:
        skip_or_fail("uv is needed to build and install the wheel")
        raise AssertionError  # unreachable
    out = tmp_path_factory.mktemp("client")
    run(uv, "build", "--wheel", "--out-dir", str(out / "dist"), str(ROOT))
    (wheel,) = (out / "dist").glob("sysevents-*.whl")
    run(uv, "venv", "-q", "--python", sys.executable, str(out / "venv"))
    python = out / "venv" / "bin" / "python"
    run(uv, "pip", "install", "-q", "--python", str(python), f"{wheel}[client]")
    return python


def installed(python: Path) -> set[str]:
    uv = uv_command()
    assert uv is not None
    listed = json.loads(run(uv, "pip", "list", "--format", "json", "--python", str(python)))
    return {p["name"].lower() for p in listed}


def test_the_client_extra_brings_no_server_package(client_env: Path) -> None:
    names = installed(client_env)
    assert {"sysevents", "httpx", "pydantic"} <= names
    assert names.isdisjoint(SERVER_PACKAGES), names & SERVER_PACKAGES


def test_the_client_extra_connects_to_a_running_api(client_env: Path) -> None:
    repo = MemoryEventRepository()
    _, key = asyncio.run(repo.keys.create_key("client", frozenset({Scope.READ, Scope.WRITE})))
    script = textwrap.dedent(
        """
        import asyncio, sys
        import sysevents

        async def main(url, key):
            async with sysevents.connect(url, api_key=key) as repo:
                new = sysevents.NewEvent(event_type="deploy", message="via client")
                event = await repo.add(new)
                page = await repo.list(sysevents.EventQuery(event_type="deploy"))
                assert [e.id for e in page.items] == [event.id], page
                async with sysevents.EventLogger(repo) as emitter:
                    emitter.emit("emitted", "by the emitter")
                    await emitter.flush()
            try:
                import sysevents_http  # noqa: F401
            except ModuleNotFoundError as exc:
                print("no server:", exc.name)

        asyncio.run(main(sys.argv[1], sys.argv[2]))
        """
    )
    with LiveApp(create_app(Settings(rate_limit="off"), repository=repo)) as live:
        out = run(str(client_env), "-c", script, live.url, key, timeout=120)
    assert out.strip() == "no server: litestar"
    stored = {e.event_type: e.message for e in repo.snapshot()}
    assert stored["deploy"] == "via client"
    assert stored["emitted"] == "by the emitter"
