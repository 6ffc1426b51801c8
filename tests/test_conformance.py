"""The conformance suite against every backend, with and without the cache."""

from sysevents.testing import EventRepositoryConformance


class TestConformance(EventRepositoryConformance):
    """Runs once per backend of the ``repo`` fixture in conftest.py."""
