"""Every route of the REST API, and the router that serves them under a path prefix."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Response, Router, route
from litestar.di import Provide
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.types import ControllerRouterHandler

from sysevents import EventLimits
from sysevents_http.auth import AccessMiddleware
from sysevents_http.body import CONTEXT_OPT, JSONRequest
from sysevents_http.problems import EXCEPTION_HANDLERS
from sysevents_http.schemas import DEFAULT_MAX_BATCH_SIZE
from sysevents_http.service import Service

from .digests import DIGEST_ROUTES
from .events import EVENT_ROUTES
from .export import EXPORT_ROUTES
from .health import HEALTH_ROUTES
from .histogram import HISTOGRAM_ROUTES
from .keys import KEY_ROUTES
from .otlp import OTLP_ROUTES
from .stream import STREAM_ROUTES


def _allow(methods: str) -> Any:
    async def handler() -> Response[None]:
        return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": methods})

    return handler


# Litestar 2 answers OPTIONS on a path with several handlers with only one
# handler's methods; these list them all.
_OPTIONS = [
    route("/api/events", http_method="OPTIONS", include_in_schema=False, name="options_events")(
        _allow("GET, HEAD, POST, OPTIONS")
    ),
    route(
        "/api/events/{event_id:str}",
        http_method="OPTIONS",
        include_in_schema=False,
        name="options_event",
    )(_allow("GET, HEAD, PUT, DELETE, OPTIONS")),
    route("/api/keys", http_method="OPTIONS", include_in_schema=False, name="options_keys")(
        _allow("GET, POST, OPTIONS")
    ),
]


def api_router(
    service: Callable[[], Service],
    limits: EventLimits,
    *,
    path: str = "/",
    max_body_size: int | None = None,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> Router:
    """A router with every API route under ``path``, each given ``service()`` as ``service``.

    Every request is counted against its client address's budget; requests
    to protected routes are authenticated, rate limited and checked for their
    scope (``sysevents_http.auth``, with the service's ``quotas``). The strict JSON request
    class, the exception handlers (problem details),
    the event ``limits`` and ``max_batch_size`` bodies are validated with and
    the body size limit are
    the router's own: they do not touch the rest of an app the router is
    mounted into.
    """
    handlers: list[ControllerRouterHandler] = [
        *_OPTIONS,
        *HISTOGRAM_ROUTES,
        *STREAM_ROUTES,
        *EXPORT_ROUTES,
        *EVENT_ROUTES,
        *HEALTH_ROUTES,
        *KEY_ROUTES,
        *DIGEST_ROUTES,
        *OTLP_ROUTES,
    ]
    middleware: list[Any] = [AccessMiddleware(service)]
    return Router(
        path=path,
        # The OPTIONS handlers come first so Litestar adds no partial one of its own.
        route_handlers=handlers,
        dependencies={"service": Provide(service, sync_to_thread=False)},
        middleware=middleware,
        request_class=JSONRequest,
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=max_body_size,
        opt={CONTEXT_OPT: {"limits": limits, "max_batch_size": max_batch_size}},
    )
