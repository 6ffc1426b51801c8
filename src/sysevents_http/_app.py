"""``create_app``: the Litestar application, and the plugin that runs the repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.logging import LoggingConfig
from litestar.plugins import InitPlugin

from sysevents import EventRepository, Settings

from ._body import JSONRequest
from ._config import HttpOptions
from ._docs import asset_routers, openapi_config
from ._problems import EXCEPTION_HANDLERS, QUIET_EXCEPTIONS
from ._routes import api_router
from ._service import EventService


class SyseventsPlugin(InitPlugin):
    """Opens the event repository in the app's lifespan and closes it in ``finally``.

    It also records the ``system_startup`` and ``system_shutdown`` events, and
    makes the :class:`EventService` available as ``app.state.sysevents``.
    """

    def __init__(
        self,
        settings: Settings,
        options: HttpOptions | None = None,
        *,
        repository: EventRepository | None = None,
    ) -> None:
        self.settings = settings
        self.options = options or HttpOptions()
        self.repository = repository

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        service = EventService(self.settings, self.options, self.repository)
        app.state.sysevents = service
        app.state.sysevents_limits = self.settings.limits
        await service.start()  # raises only for a misconfiguration: nothing to close then
        try:
            yield
        finally:
            await service.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Add the lifespan and the strict body decoding."""
        app_config.lifespan = [*app_config.lifespan, self._lifespan]
        app_config.request_class = JSONRequest
        return app_config


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
    """
    if settings is None:
        settings = Settings.from_env(**overrides)
    elif overrides:
        settings = settings.updated(**overrides)
    if options is None:
        options = HttpOptions.from_env()
    return Litestar(
        route_handlers=[api_router, *asset_routers()],
        plugins=[SyseventsPlugin(settings, options, repository=repository)],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
        # Litestar 2.25 ignores this when a plugin sets it in on_app_init.
        request_max_body_size=options.max_body_size,
        logging_config=LoggingConfig(
            log_exceptions="always",
            disable_stack_trace=QUIET_EXCEPTIONS,
            configure_root_logger=False,
            loggers={"sysevents_http": {"level": "INFO", "handlers": ["queue_listener"]}},
        ),
        debug=debug,
    )
