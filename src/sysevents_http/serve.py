"""``sysevents serve``: run the API under uvicorn."""

from __future__ import annotations

from sysevents import Settings

from ._app import create_app


def run(settings: Settings, *, host: str, port: int) -> None:
    """Serve the API for ``settings`` on ``host:port`` until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", lifespan="on")
