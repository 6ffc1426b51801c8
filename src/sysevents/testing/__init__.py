"""Testing aids for services that use sysevents, and for third-party backends.

``EventRepositoryConformance`` is the suite every backend passes: subclass it
in a test module and provide a ``repo`` fixture yielding an empty, open
repository of your backend.
"""

from .conformance import EventRepositoryConformance

__all__ = ["EventRepositoryConformance"]
