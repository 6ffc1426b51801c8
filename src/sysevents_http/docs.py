"""OpenAPI document and doc pages whose assets are served locally (no CDN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.router import Router
from litestar.routes import BaseRoute
from litestar.static_files import create_static_files_router

import sysevents

from .routes.params import API_KEY_HEADER, BEARER

SWAGGER_ASSETS = "/static/swagger-ui"
"""Where the Swagger UI files are served."""
REDOC_ASSETS = "/static/redoc"
"""Where the ReDoc files are served."""
_HERE = Path(__file__).parent


def _swagger_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(swagger_ui_path)


_FAVICON = f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>"


class _DocsRouter(Router):
    """The router of the doc pages, without Litestar's HTML page for unknown paths.

    That page would answer every unknown top-level path with HTML; without it
    they are 404 problem details like every other error.
    """

    def register(self, value: Any) -> list[BaseRoute]:
        """Register a handler, except the HTML not-found page."""
        if getattr(value, "handler_name", "") == "handle_schema_path_not_found":
            return []
        return super().register(value)


def openapi_config() -> OpenAPIConfig:
    """``/openapi.json``, Swagger UI at ``/docs`` and ReDoc at ``/redoc``."""
    return OpenAPIConfig(
        title="sysevents",
        version=sysevents.__version__,
        description="Record and query system events. Errors are RFC 9457 problem details.\n\n"
        "Every route but the health checks needs an API key with a scope (`read`, `write` "
        "or `admin`, named on each operation), sent as `Authorization: Bearer <key>` or "
        "`X-API-Key: <key>`. Use Authorize to try them here.",
        tags=[
            Tag(name="events", description="Recording, querying and correcting events."),
            Tag(name="keys", description="API keys (the `admin` scope)."),
            Tag(name="health", description="Liveness of the service and of its store."),
        ],
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API key: `Authorization: Bearer se_...`.",
                ),
                API_KEY_HEADER: SecurityScheme(
                    type="apiKey",
                    name="X-API-Key",
                    security_scheme_in="header",
                    description="The same key, in the `X-API-Key` header.",
                ),
            }
        ),
        path="/",
        openapi_router=_DocsRouter("/", route_handlers=[], include_in_schema=False),
        render_plugins=[
            SwaggerRenderPlugin(
                path="/docs",
                js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
                favicon=_FAVICON,
            ),
            RedocRenderPlugin(
                path="/redoc",
                js_url=f"{REDOC_ASSETS}/redoc.standalone.js",
                google_fonts=False,
                favicon=_FAVICON,
            ),
        ],
    )


def asset_routers() -> list[Router]:
    """Routers serving the Swagger UI and ReDoc files shipped with the package."""
    return [
        create_static_files_router(
            path=SWAGGER_ASSETS,
            directories=[_swagger_dir()],
            include_in_schema=False,
            name="swagger_assets",
        ),
        create_static_files_router(
            path=REDOC_ASSETS,
            directories=[_HERE / "static" / "redoc"],
            include_in_schema=False,
            name="redoc_assets",
        ),
    ]
