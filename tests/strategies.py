"""Hypothesis strategies for events, patches and queries, shared by the property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from sysevents import EventFilter, EventPatch, EventQuery, NewEvent, Severity

# Printable text of every script; no NUL, no surrogates, no control, format,
# separator, unassigned, private-use or filler characters in labels.
label_chars = st.characters(
    exclude_categories=("Cc", "Cs", "Cf", "Zl", "Zp", "Cn", "Co"),
    exclude_characters="\u115f\u1160\u3164\uffa0\u2800",
)
text_chars = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")

EVENT_TYPES = ["deploy", "login", "crash", "health_check"]
SOURCES = ["api", "worker", "cron"]


def labels(max_size: int) -> st.SearchStrategy[str]:
    return st.text(label_chars, min_size=1, max_size=max_size).filter(lambda s: s.strip() != "")


# Types beginning "sysevents." are refused (sysevents' own): tests of that draw them on purpose.
event_types = st.one_of(
    st.sampled_from(EVENT_TYPES), labels(50).filter(lambda s: not s.startswith("sysevents."))
)
sources = st.one_of(st.none(), st.sampled_from(SOURCES), labels(100))
severities = st.sampled_from(list(Severity))
# Words whose lowercase differs between simple and full mappings, or between
# lowercase and case folding: the search filters must treat them alike everywhere.
SEARCH_WORDS = [
    "Échec",
    "échec",
    "İstanbul",
    "istanbul",
    "Straße",
    "STRASSE",
    "ΣΟΦΟΣ",
    "σοφος",
    "50%_x",
]
messages = st.one_of(
    st.text(text_chars, min_size=1, max_size=200),
    st.lists(st.sampled_from(SEARCH_WORDS), min_size=1, max_size=3).map(" ".join),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(text_chars, max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(text_chars, max_size=10), children, max_size=4),
    ),
    max_leaves=12,
)
# Values JSON compares in ways Python does not (1 == 1.0 == True in Python).
SEARCH_VALUES: list[Any] = [1, 1.0, "1", True, None, "a", [1, 2], {"id": 1}, 10**20, 1e20]
SEARCH_PATHS = ["n", "user.id", "user"]
search_values = st.sampled_from(SEARCH_VALUES)
searched_details = st.fixed_dictionaries(
    {},
    optional={
        "n": search_values,
        "user": st.one_of(search_values, st.fixed_dictionaries({"id": search_values})),
    },
)
details = st.one_of(
    st.none(),
    st.dictionaries(st.text(text_chars, max_size=10), json_values, max_size=5),
    searched_details,
)

# Whole minutes back from a fixed base keep events away from the last-hour and
# last-24h boundaries, which the two backends evaluate a few microseconds apart.
BASE = datetime.now(UTC).replace(second=30, microsecond=0)
minutes_ago = st.integers(min_value=-12 * 60, max_value=40 * 24 * 60).filter(
    lambda m: m not in (60, 24 * 60)
)
timestamps = st.builds(
    lambda m, us: BASE - timedelta(minutes=m, microseconds=us),
    minutes_ago,
    st.sampled_from([0, 0, 1, 999_999]),
)


@st.composite
def new_events(draw: st.DrawFn) -> NewEvent:
    return NewEvent(
        event_type=draw(event_types),
        severity=draw(severities),
        message=draw(messages),
        details=draw(details),
        source=draw(sources),
        timestamp=draw(timestamps),
    )


@st.composite
def patches(draw: st.DrawFn) -> EventPatch:
    fields: dict[str, Any] = {}
    if draw(st.booleans()):
        fields["event_type"] = draw(event_types)
    if draw(st.booleans()):
        fields["severity"] = draw(severities)
    if draw(st.booleans()):
        fields["message"] = draw(messages)
    if draw(st.booleans()):
        fields["details"] = draw(details)
    if draw(st.booleans()):
        fields["source"] = draw(sources)
    if draw(st.booleans()):
        fields["timestamp"] = draw(timestamps)
    return EventPatch(**fields)


@st.composite
def filters(draw: st.DrawFn) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if draw(st.booleans()):
        fields["event_type"] = draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=1, max_size=3))
    if draw(st.booleans()):
        fields["severity"] = draw(st.lists(severities, min_size=1, max_size=3))
    if draw(st.booleans()):
        fields["min_severity"] = draw(severities)
    if draw(st.booleans()):
        fields["source"] = draw(st.sampled_from(SOURCES))
    if draw(st.booleans()):
        fields["since"] = draw(timestamps)
    if draw(st.booleans()):
        fields["until"] = draw(timestamps)
    if draw(st.integers(0, 3)) == 0:
        words = [*SEARCH_WORDS, "i̇", "ß", "ss", "\u03c2", "\u03c3", "%", "_", "E"]
        fields["q"] = draw(st.sampled_from(words))
    if draw(st.integers(0, 3)) == 0:
        paths = draw(st.lists(st.sampled_from(SEARCH_PATHS), min_size=1, max_size=2, unique=True))
        fields["details"] = {path: draw(search_values) for path in paths}
    return fields


event_filters = filters().map(lambda f: EventFilter(**f))


@st.composite
def queries(draw: st.DrawFn) -> EventQuery:
    return EventQuery(
        **draw(filters()),
        order=draw(st.sampled_from(["newest", "oldest"])),
        limit=draw(st.integers(min_value=1, max_value=8)),
        offset=draw(st.integers(min_value=0, max_value=6)),
        count=draw(st.sampled_from(["capped", "exact", "none"])),
    )
