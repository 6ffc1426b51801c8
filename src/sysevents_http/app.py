"""``create_app``: the REST API as a whole Litestar application, with its doc pages."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.logging import LoggingConfig

from sysevents import EventRepository, Settings

from .config import HttpOptions
from .docs import asset_routers, openapi_config
from .plugin import SyseventsConfig, SyseventsPlugin
from .problems import EXCEPTION_HANDLERS, QUIET_EXCEPTIONS


def cors_config(settings: Settings) -> CORSConfig | None:
    """CORS for the origins of ``settings.cors_origins``; none listed, none allowed."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
        expose_headers=["Location", "Retry-After", "RateLimit", "RateLimit-Policy"],
        max_age=600,
    )


def create_app(
    settings: Settings | None = None,
    *,
    repository: EventRepository | None = None,
    options: HttpOptions | None = None,
    debug: bool = False,
    **overrides: Any,
) -> Litestar:
    """The REST API as a Litestar app; ``uvicorn --factory sysevents_http:create_app`` works.

    With no ``settings``, they come from ``SYSEVENTS_*`` environment variables
    and ``overrides`` (any :class:`~sysevents.Settings` field, such as
    ``database_url``). ``options`` (default: ``SYSEVENTS_HTTP_*`` variables)
    set the body size limit, the health event interval and the store timeout.
    A ``repository`` given here is used as it is and is not closed by the app.
    To mount the API into an app of your own, use :class:`SyseventsPlugin`.
    """
    if settings is None:
        settings = Settings.from_env(**overrides)
    elif overrides:
        settings = settings.updated(**overrides)
    plugin = SyseventsPlugin(
        SyseventsConfig(settings=settings, options=options, repository=repository)
    )
    return Litestar(
        route_handlers=asset_routers(),
        cors_config=cors_config(settings),
        plugins=[plugin],
        # The API's router has its own; these answer what no route matches (404, 405).
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
        logging_config=LoggingConfig(
            log_exceptions="always",
            disable_stack_trace=QUIET_EXCEPTIONS,
            configure_root_logger=False,
            loggers={"sysevents_http": {"level": "INFO", "handlers": ["queue_listener"]}},
        ),
        debug=debug,
    )
