"""``sysevents serve``: the API under uvicorn, in one process or several on one port.

The HTTP protocol is uvicorn's, with deadlines for slow and idle clients
(``sysevents_http.deadlines``). With ``workers`` above one, uvicorn starts that
many processes on the listening socket; each builds the app from the
``SYSEVENTS_*`` and ``SYSEVENTS_HTTP_*`` variables this process sets for them
(:func:`worker_app`). Background work runs in one of them at a time: the
store's lease decides (see ``EventRepository.leads``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from urllib.parse import urlsplit

from litestar import Litestar

import sysevents
from sysevents import ConfigurationError, Settings, StoreUnavailableError, SyseventsError
from sysevents.keys import clashing_name, static_keys
from sysevents.settings import ENV_PREFIX, environment_of

from . import deadlines
from .access import Access
from .app import create_app
from .config import ENV_PREFIX as HTTP_PREFIX
from .config import HttpOptions

logger = logging.getLogger("sysevents_http")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


async def _any_key(settings: Settings) -> bool | None:
    """Whether a key exists (settings or store); ``None`` if the store cannot say now."""
    if settings.api_keys is not None and settings.api_keys.get_secret_value().strip():
        return True
    if settings.database_url.startswith("memory:"):
        return False  # the memory store starts with none
    repo = sysevents.connect(settings=settings)
    keys = repo.keys
    if keys is None:
        return False
    try:
        async with repo, asyncio.timeout(settings.timeout + 1):
            return await keys.has_keys()
    except (SyseventsError, TimeoutError):
        return None


def secured(settings: Settings, host: str) -> Settings:
    """``settings`` for serving on ``host``: beyond this machine, keys are required.

    With ``auth`` left to ``auto`` on an address other machines reach, the
    service refuses to start while no key exists, and says how to make one.
    ``auth=off`` is obeyed, with a warning.
    """
    if is_loopback(host):
        return settings
    if settings.auth == "off":
        logger.warning(
            "serving on %s with auth off: anyone who can reach it can read, change and "
            "delete every event",
            host,
        )
        return settings
    if settings.auth == "auto" and asyncio.run(_any_key(settings)) is False:
        raise ConfigurationError(
            f"refusing to serve on {host} with no API key: create one with "
            "`sysevents keys create --name admin --scope read,write,admin` (or give keys in "
            "SYSEVENTS_API_KEYS), or pass --auth off to serve without keys"
        )
    return settings.updated(auth="required")


async def _refuse_clashing_names(settings: Settings) -> None:
    """A key name both in ``api_keys`` and in the store: a one-line ``ConfigurationError``."""
    if settings.api_keys is None or settings.database_url.startswith("memory:"):
        return
    static = static_keys(settings.api_keys.get_secret_value())
    repo = sysevents.connect(settings=settings)
    try:
        async with repo, asyncio.timeout(settings.timeout + 1):
            await clashing_name(static, repo.keys)
    except (StoreUnavailableError, TimeoutError):
        return  # the service checks again when the store answers


def worker_app() -> Litestar:
    """The app of one process, configured by the environment (``serve`` sets it)."""
    options = HttpOptions.from_env()
    deadlines.configure(options)
    return create_app(Settings.from_env(), options=options)


def run(settings: Settings, *, host: str, port: int, options: HttpOptions | None = None) -> None:
    """Serve the API for ``settings`` on ``host:port`` until interrupted.

    A URL no backend serves, a missing extra, an open service beyond this
    machine, or several workers on the memory store is a ``ConfigurationError``
    here, before the server starts.
    """
    import uvicorn

    options = options or HttpOptions.from_env()
    sysevents.connect(settings=settings)  # builds, does not open: checks the URLs
    Access(settings)  # parses SYSEVENTS_API_KEYS: a malformed entry is one line, here
    settings = secured(settings, host)
    asyncio.run(_refuse_clashing_names(settings))
    workers = options.worker_count
    if workers > 1 and urlsplit(settings.database_url).scheme == "memory":
        raise ConfigurationError(
            "memory:// keeps events in one process: serve it with --workers 1, "
            "or give a database (--database-url)"
        )
    # The workers read what this process was given from the environment.
    for name, value in {
        **environment_of(settings, ENV_PREFIX),
        **environment_of(options, HTTP_PREFIX),
    }.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    forwarded = ",".join(options.forwarded_allow_ips)
    uvicorn.run(
        "sysevents_http.serve:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=options.access_log,
        lifespan="on",
        http=deadlines.protocol_class(options.http),
        timeout_keep_alive=max(1, round(options.keep_alive_timeout)),
        limit_concurrency=options.max_connections,
        # Forwarded headers are believed only from the proxies named.
        proxy_headers=bool(forwarded),
        forwarded_allow_ips=forwarded or None,
    )
