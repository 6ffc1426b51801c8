"""The console's page and assets as the server sends them (the browser tests use them)."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from sysevents_http import HttpOptions, SyseventsConfig, SyseventsPlugin, create_app
from sysevents_http.console import STATIC_DIR


def assets_of(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["'](/[^"']+)["']""", page)


def test_page_and_every_asset_are_served_with_a_strict_policy() -> None:
    with TestClient(create_app(database_url="memory://")) as client:
        page = client.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        # Nothing from another host, no inline script or style.
        assert "http://" not in page.text
        assert "https://" not in page.text
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None
        assert "<style" not in page.text
        assert " style=" not in page.text
        assets = assets_of(page.text)
        assert "/ui/static/main.js" in assets
        for asset in assets:
            answer = client.get(asset)
            assert answer.status_code == 200, asset
            if asset.endswith(".js"):
                assert answer.headers["content-type"].startswith("text/javascript"), asset


def test_every_module_the_page_imports_is_served() -> None:
    with TestClient(create_app(database_url="memory://")) as client:
        seen: set[str] = set()
        pending = ["main.js"]
        while pending:
            name = pending.pop()
            seen.add(name)
            source = client.get(f"/ui/static/{name}")
            assert source.status_code == 200, name
            for imported in re.findall(r"""from ["']\./([\w.]+)["']""", source.text):
                if imported not in seen:
                    pending.append(imported)
        served = {p.name for p in STATIC_DIR.glob("*.js")}
        assert seen == served  # no module left unused, none missing


def test_licences_of_every_asset_are_served() -> None:
    with TestClient(create_app(database_url="memory://")) as client:
        licences = client.get("/ui/static/LICENSES.txt")
        assert licences.status_code == 200
        assert "uPlot" in licences.text
        assert "MIT License" in licences.text
        assert client.get("/ui/static/vendor/uplot/LICENSE").status_code == 200
        for path in STATIC_DIR.rglob("*"):
            if path.suffix in {".js", ".css"}:
                assert path.name in licences.text, path.name


def test_console_can_be_turned_off() -> None:
    app = create_app(database_url="memory://", options=HttpOptions(console=False))
    with TestClient(app) as client:
        assert client.get("/ui").status_code == 404
        assert client.get("/ui/static/main.js").status_code == 404
        assert client.get("/api/health").status_code == 200


def test_console_off_from_the_environment() -> None:
    assert HttpOptions.from_env({"SYSEVENTS_HTTP_CONSOLE": "false"}).console is False
    assert HttpOptions.from_env({}).console is True


def test_console_follows_the_plugin_path() -> None:
    plugin = SyseventsPlugin(
        SyseventsConfig(settings=None, options=HttpOptions(), path="/events", repository=None)
    )
    with TestClient(Litestar(plugins=[plugin])) as client:
        page = client.get("/events/ui")
        assert page.status_code == 200
        assert '<meta name="sysevents-prefix" content="/events">' in page.text
        for asset in assets_of(page.text):
            assert asset.startswith("/events/"), asset
            assert client.get(asset).status_code == 200, asset
        assert client.get("/ui").status_code == 404


def test_console_needs_no_key_but_its_data_does() -> None:
    from sysevents.keys import new_key

    key, _, _ = new_key()
    app = create_app(database_url="memory://", api_keys=f"reader:read:{key}", auth="required")
    with TestClient(app) as client:
        assert client.get("/ui").status_code == 200
        assert client.get("/ui/static/main.js").status_code == 200
        assert client.get("/api/events").status_code == 401
        assert client.get("/api/events", headers={"Authorization": f"Bearer {key}"}).is_success


def test_serve_without_the_console() -> None:
    import urllib.error
    import urllib.request

    from .served import serve

    with serve("--no-console") as url:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{url}/ui", timeout=10)
        assert answer.value.code == 404
        with urllib.request.urlopen(f"{url}/api/health", timeout=10) as health:
            assert health.status == 200
