"""``SyseventsPlugin``: the REST API as a Litestar plugin, to mount into any Litestar app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.di import Provide
from litestar.plugins import InitPlugin

from sysevents import EventRepository, Settings, StoreUnavailableError

from .auth import AccessMiddleware
from .config import HttpOptions
from .console import console_router
from .metrics import Metrics, metrics_route, time_requests
from .routes import api_router
from .service import Service


@dataclass(frozen=True, slots=True)
class SyseventsConfig:
    """How the REST API is configured and where it is mounted.

    ``settings`` default to the ``SYSEVENTS_*`` environment variables and
    ``options`` to the ``SYSEVENTS_HTTP_*`` ones, both read when the plugin is
    created. A ``repository`` given here is used as it is and never closed by
    the app; otherwise one is opened from the settings in the app's lifespan.
    ``path`` prefixes every route: with ``"/events"`` the list is at
    ``/events/api/events`` and the console at ``/events/ui`` (unless
    ``options.console`` is false).
    """

    settings: Settings | None = None
    options: HttpOptions | None = None
    repository: EventRepository | None = None
    path: str = "/"


class SyseventsPlugin(InitPlugin):
    """Adds the API's routes to an app, and runs its repository in the app's lifespan.

    ``Litestar(plugins=[SyseventsPlugin(SyseventsConfig(path="/events"))])``
    mounts the API into an app of your own. Its routes carry their own request
    class, exception handlers (problem details) and body limit, so the rest of
    the app is untouched. The lifespan opens the repository, records the
    ``system_startup`` and ``system_shutdown`` events, and closes it in
    ``finally``; the running :class:`~sysevents_http.service.Service` is
    :attr:`service` (and ``app.state.sysevents``).
    """

    def __init__(self, config: SyseventsConfig | None = None) -> None:
        config = config or SyseventsConfig()
        self.settings = config.settings or Settings.from_env()
        self.options = config.options or HttpOptions.from_env()
        self.config = config
        self._service: Service | None = None
        self.metrics = (
            Metrics(
                lambda: None if self._service is None else self._service.store,
                lambda: {} if self._service is None else self._service.events.chore_health(),
            )
            if self.options.metrics
            else None
        )
        """The app's Prometheus figures (``None`` with ``metrics=false``)."""

    @property
    def service(self) -> Service:
        """The running service (``StoreUnavailableError`` outside the app's lifespan)."""
        if self._service is None:
            raise StoreUnavailableError("the sysevents service has not started")
        return self._service

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        service = Service(self.settings, self.options, self.config.repository, self.metrics)
        self._service = service
        app.state.sysevents = service
        await service.start()  # raises only for a misconfiguration: nothing to close then
        try:
            yield
        finally:
            await service.stop()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Add the lifespan, the API's router and the console's."""
        app_config.lifespan = [*app_config.lifespan, self._lifespan]
        console = [console_router(self.config.path)] if self.options.console else []
        app_config.route_handlers = [
            *app_config.route_handlers,
            *console,
            api_router(
                lambda: self.service,
                self.settings.limits,
                path=self.config.path,
                max_body_size=self.options.max_body_size,
                max_batch_size=self.options.max_batch_size,
            ),
        ]
        metrics = self.metrics
        if metrics is not None:
            app_config.on_startup = [*app_config.on_startup, time_requests(metrics)]
            app_config.route_handlers = [
                *app_config.route_handlers,
                Router(
                    path=self.config.path,
                    route_handlers=[metrics_route],
                    # Open, but counted against the client address's budget like the API.
                    middleware=[AccessMiddleware(lambda: self.service)],
                    dependencies={
                        "metrics": Provide(lambda: metrics, sync_to_thread=False, use_cache=True)
                    },
                ),
            ]
        return app_config
