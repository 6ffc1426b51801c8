"""sysevents_http: the REST API of sysevents, as a Litestar app or plugin.

Run it with ``sysevents serve`` or ``uvicorn --factory sysevents_http:create_app``;
mount it into an app of your own with :class:`SyseventsPlugin`.
"""

from .app import create_app
from .config import HttpOptions
from .plugin import SyseventsConfig, SyseventsPlugin
from .service import Service

__all__ = ["HttpOptions", "Service", "SyseventsConfig", "SyseventsPlugin", "create_app"]
