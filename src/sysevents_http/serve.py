"""``sysevents serve``: run the API under uvicorn."""

from __future__ import annotations

import sysevents
from sysevents import Settings

from .app import create_app


def run(settings: Settings, *, host: str, port: int) -> None:
    """Serve the API for ``settings`` on ``host:port`` until interrupted.

    A URL no backend serves, or a missing extra, is a ``ConfigurationError``
    here, before the server starts, rather than a failed start-up.
    """
    import uvicorn

    sysevents.connect(settings=settings)  # builds, does not open: checks the URLs
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", lifespan="on")
