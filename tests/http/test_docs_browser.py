"""The doc pages render in a real headless browser with no internet access."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail

from .served import serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        skip_or_fail("chromium is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
def base_url() -> object:
    with serve() as url:
        yield url


def render(chromium: str, url: str, profile: Path) -> str:
    """The DOM of ``url`` after its scripts ran, every host but this one unreachable."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            # No internet, as on an offline machine: only this server resolves.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_swagger_ui_renders_every_operation(chromium: str, base_url: str, tmp_path: Path) -> None:
    dom = render(chromium, f"{base_url}/docs", tmp_path)
    assert "swagger-ui" in dom
    assert dom.count('class="opblock ') >= 8, dom[:3000]
    for text in [
        "Record an event",
        "List events",
        "Event statistics",
        "Get an event",
        "Change an event",
        "Delete an event",
        "Service health",
        "Store health",
        "Create an API key",
    ]:
        assert text in dom, text
    # The keys' security schemes give Swagger its Authorize button, and each
    # protected operation its lock.
    assert 'class="btn authorize' in dom
    assert dom.count("authorization__btn") >= 10


def test_redoc_renders_every_operation(chromium: str, base_url: str, tmp_path: Path) -> None:
    dom = render(chromium, f"{base_url}/redoc", tmp_path)
    for text in ["Record an event", "List events", "Delete an event", "Store health"]:
        assert text in dom, text
    assert "application/problem+json" in dom


def test_doc_pages_load_nothing_from_other_hosts() -> None:
    from litestar.testing import TestClient

    from sysevents_http import create_app

    with TestClient(create_app(database_url="memory://")) as client:
        for path in ["/docs", "/redoc"]:
            page = client.get(path)
            assert page.status_code == 200
            assert "http://" not in page.text
            assert "https://" not in page.text
            for asset in re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", page.text):
                assert client.get(asset).status_code == 200, asset
