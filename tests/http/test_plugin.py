"""Mounting the API into an app of one's own, under a path prefix, without touching the rest."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.testing import AsyncTestClient

from sysevents import MemoryEventRepository
from sysevents_http import SyseventsConfig, SyseventsPlugin


@post("/notes", status_code=200)
async def take_note(request: Request[Any, Any, Any]) -> dict[str, str]:
    """A route of the host app that reads a plain-text body."""
    return {"note": (await request.body()).decode()}


class HostError(Exception):
    """An error of the host app."""


@get("/fail")
async def fail() -> None:
    """A route of the host app whose errors the host handles."""
    raise HostError("the host's own error")


def host_handler(_: Request[Any, Any, Any], exc: HostError) -> Response[dict[str, str]]:
    return Response({"handled_by": "host", "error": str(exc)}, status_code=418)


def host_app(repo: MemoryEventRepository) -> tuple[Litestar, SyseventsPlugin]:
    plugin = SyseventsPlugin(SyseventsConfig(repository=repo, path="/events"))
    app = Litestar(
        route_handlers=[take_note, fail],
        plugins=[plugin],
        exception_handlers={HostError: host_handler},
    )
    return app, plugin


async def test_the_api_is_served_under_its_prefix() -> None:
    repo = MemoryEventRepository()
    app, plugin = host_app(repo)
    async with AsyncTestClient(app) as client:
        created = await client.post(
            "/events/api/events", json={"event_type": "deploy", "message": "mounted"}
        )
        assert created.status_code == 201
        assert (await client.get("/events/api/events/999")).status_code == 404
        assert (await client.get("/api/events")).status_code == 404  # nothing outside the prefix
        bad = await client.post("/events/api/events", json={"event_type": ""})
        assert bad.status_code == 400
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert plugin.service.store.inner is repo
        assert app.state.sysevents is plugin.service
    assert (await repo.get(created.json()["id"])) is not None


async def test_the_host_app_keeps_its_own_request_class_and_handlers() -> None:
    app, _ = host_app(MemoryEventRepository())
    async with AsyncTestClient(app) as client:
        # The API refuses text bodies (415); the host's own route reads them as it likes.
        note = await client.post("/notes", content=b"hello", headers={"content-type": "text/plain"})
        assert note.status_code == 200
        assert note.json() == {"note": "hello"}
        refused = await client.post(
            "/events/api/events", content=b"hello", headers={"content-type": "text/plain"}
        )
        assert refused.status_code == 415
        failed = await client.get("/fail")
        assert failed.status_code == 418
        assert failed.json()["handled_by"] == "host"
