"""The conformance suite: the behaviour every ``EventRepository`` must show.

Subclass :class:`EventRepositoryConformance` in a test module and provide a
``repo`` fixture that yields an empty, open repository; pytest-asyncio runs
the tests. The suite is split by area; each area is a class of its own, so a
backend can also run only some.
"""

from __future__ import annotations

from .changes import ChangeConformance
from .helpers import BAD_IDS, all_pages, new, same_event
from .histogram import HistogramConformance
from .integrity import IntegrityConformance
from .listing import ListConformance
from .provenance import ProvenanceConformance
from .retention import RetentionConformance
from .search import SearchConformance
from .stats import StatsConformance
from .tail import TailConformance
from .traces import TraceConformance
from .writes import WriteConformance

__all__ = [
    "BAD_IDS",
    "ChangeConformance",
    "EventRepositoryConformance",
    "HistogramConformance",
    "IntegrityConformance",
    "ListConformance",
    "ProvenanceConformance",
    "RetentionConformance",
    "SearchConformance",
    "StatsConformance",
    "TailConformance",
    "TraceConformance",
    "WriteConformance",
    "all_pages",
    "new",
    "same_event",
]


class EventRepositoryConformance(
    WriteConformance,
    ChangeConformance,
    ProvenanceConformance,
    ListConformance,
    StatsConformance,
    RetentionConformance,
    TraceConformance,
    SearchConformance,
    HistogramConformance,
    TailConformance,
    IntegrityConformance,
):
    """Every area of the suite."""
