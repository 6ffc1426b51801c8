"""The web console at ``/ui``: one page and its assets, every one served from this package.

The page is plain HTML and a few ES modules (no build step); the chart
library (uPlot) is vendored with its licence under ``static/vendor``. The
page and the assets are open, like the doc pages: the data they load comes
from the API, which asks for a key with the ``read`` scope when auth is on.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from litestar import MediaType, Response, Router, route
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from sysevents_http.routes.params import READ

CONSOLE_PATH = "/ui"
"""Where the console's page is served (under the plugin's path)."""
_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"
"""The console's assets: its modules, its style sheet, and the vendored chart library."""

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
"""Only this origin's own scripts, styles and API: no inline code, no other host, no framing."""

PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
"""The headers of the console's page."""


def render_page(prefix: str) -> str:
    """The console's HTML for an API mounted under ``prefix`` (``""`` at the root)."""
    template = (_HERE / "page.html").read_text(encoding="utf-8")
    return template.replace("{{prefix}}", html.escape(prefix, quote=True))


def console_router(path: str = "/") -> Router:
    """A router serving the console at ``{path}/ui`` and its assets at ``{path}/ui/static``."""
    prefix = path.rstrip("/")
    page = render_page(prefix)

    @route(
        CONSOLE_PATH,
        http_method=READ,
        include_in_schema=False,
        name="sysevents_console",
        media_type=MediaType.HTML,
    )
    async def console_page() -> Response[str]:
        """The console's single page; its state lives in the query string."""
        return Response(page, media_type=MediaType.HTML, headers=PAGE_HEADERS)

    async def nosniff(response: Any) -> Any:
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    assets = create_static_files_router(
        path=f"{CONSOLE_PATH}/static",
        directories=[STATIC_DIR],
        name="sysevents_console_assets",
        include_in_schema=False,
        # Revalidated on each load (cheap: ETag), so an upgrade is never half-cached.
        cache_control=CacheControlHeader(no_cache=True),
        after_request=nosniff,
    )
    return Router(path=path, route_handlers=[console_page, assets], include_in_schema=False)
