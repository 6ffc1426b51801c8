"""sysevents_http: the REST API of sysevents, as a Litestar app.

Run it with ``sysevents serve`` or ``uvicorn --factory sysevents_http:create_app``.
"""

from ._app import SyseventsPlugin, create_app
from ._config import HttpOptions
from ._service import EventService

__all__ = ["EventService", "HttpOptions", "SyseventsPlugin", "create_app"]
