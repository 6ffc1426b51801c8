"""Every rule of the event contract, both sides of each limit, on every backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

import sysevents
from sysevents import EventFilter, EventLimits, EventPatch, EventQuery, NewEvent, Severity


def nested(depth: int) -> dict[str, Any]:
    """A details object nested ``depth`` levels deep (the object itself is level 1)."""
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth - 1):
        node["d"] = {}
        node = node["d"]
    return root


def future(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


GOOD: dict[str, Any] = {"event_type": "deploy", "severity": "info", "message": "ok"}

# (case name, fields to change in GOOD, the field the error must name)
BAD_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    ("type missing", {"event_type": None}, "event_type"),
    ("type empty", {"event_type": ""}, "event_type"),
    ("type blank", {"event_type": "   "}, "event_type"),
    ("type 51 chars", {"event_type": "t" * 51}, "event_type"),
    ("type newline", {"event_type": "a\nb"}, "event_type"),
    ("type tab", {"event_type": "a\tb"}, "event_type"),
    ("type NUL", {"event_type": "a\x00b"}, "event_type"),
    ("type C1 control", {"event_type": "a\x85b"}, "event_type"),
    ("type number", {"event_type": 12}, "event_type"),
    ("type zero-width space", {"event_type": "\u200b"}, "event_type"),
    ("type bidi override", {"event_type": "a\u202eb"}, "event_type"),
    ("severity unknown", {"severity": "fatal"}, "severity"),
    ("severity uppercase", {"severity": "INFO"}, "severity"),
    ("severity number", {"severity": 1}, "severity"),
    ("message missing", {"message": None}, "message"),
    ("message empty", {"message": ""}, "message"),
    ("message NUL", {"message": "a\x00"}, "message"),
    ("message lone surrogate", {"message": "a\ud800"}, "message"),
    ("message over 64 KiB", {"message": "m" * (64 * 1024 + 1)}, "message"),
    ("message over 64 KiB in UTF-8", {"message": "é" * (32 * 1024 + 1)}, "message"),
    ("details a list", {"details": [1, 2]}, "details"),
    ("details a string", {"details": "text"}, "details"),
    ("details NUL in value", {"details": {"k": "a\x00"}}, "details"),
    ("details NUL in key", {"details": {"a\x00": 1}}, "details"),
    ("details NUL deep", {"details": {"a": [{"b": ["\x00"]}]}}, "details"),
    ("details 33 deep", {"details": nested(33)}, "details"),
    ("details 1000 deep", {"details": nested(1000)}, "details"),
    ("details over 64 KiB", {"details": {"k": "x" * (64 * 1024)}}, "details"),
    ("details NaN", {"details": {"k": float("nan")}}, "details"),
    ("details infinity", {"details": {"k": float("inf")}}, "details"),
    ("details huge integer", {"details": {"k": 10**1000}}, "details"),
    ("details not JSON", {"details": {"k": {1, 2}}}, "details"),
    ("details datetime", {"details": {"k": datetime.now(UTC)}}, "details"),
    ("source empty", {"source": ""}, "source"),
    ("source 101 chars", {"source": "s" * 101}, "source"),
    ("source control", {"source": "a\x1bb"}, "source"),
    ("source line separator", {"source": "a\u2028b"}, "source"),
    ("source number", {"source": 5}, "source"),
    ("timestamp number", {"timestamp": 0}, "timestamp"),
    ("timestamp numeric text", {"timestamp": "1700000000"}, "timestamp"),
    ("timestamp naive", {"timestamp": "2024-01-01T00:00:00"}, "timestamp"),
    ("timestamp date only", {"timestamp": "2024-01-01"}, "timestamp"),
    ("timestamp garbage", {"timestamp": "yesterday"}, "timestamp"),
    ("timestamp overflows UTC", {"timestamp": "9999-12-31T23:59:59-05:00"}, "timestamp"),
    ("timestamp underflows UTC", {"timestamp": "0001-01-01T00:00:00+05:00"}, "timestamp"),
    ("timestamp a day ahead", {"timestamp": future(timedelta(days=1, hours=6))}, "timestamp"),
    ("timestamp null", {"timestamp": None}, "timestamp"),
    ("id given", {"id": 5}, "id"),
    ("created_at given", {"created_at": "2024-01-01T00:00:00Z"}, "created_at"),
    ("unknown field", {"colour": "red"}, "colour"),
    ("trace_id all zeros", {"trace_id": "0" * 32}, "trace_id"),
    ("trace_id upper case", {"trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736"}, "trace_id"),
    ("trace_id short", {"trace_id": "4bf92f3577b34da6a3ce929d0e0e473"}, "trace_id"),
    ("trace_id long", {"trace_id": "4bf92f3577b34da6a3ce929d0e0e47360"}, "trace_id"),
    ("trace_id not hex", {"trace_id": "4bf92f3577b34da6a3ce929d0e0e473z"}, "trace_id"),
    ("trace_id a number", {"trace_id": 12345}, "trace_id"),
    ("span_id all zeros", {"span_id": "0" * 16}, "span_id"),
    ("span_id upper case", {"span_id": "00F067AA0BA902B7"}, "span_id"),
    ("span_id short", {"span_id": "00f067aa0ba902b"}, "span_id"),
    ("span_id with a newline", {"span_id": "00f067aa0ba902b7\n"}, "span_id"),
]


def payload(changes: dict[str, Any]) -> dict[str, Any]:
    data = {**GOOD, **changes}
    return {k: v for k, v in data.items() if not (v is None and k in ("event_type", "message"))}


def error_fields(exc: ValidationError) -> set[str]:
    return {str(e["loc"][0]) for e in exc.errors() if e["loc"]}


@pytest.mark.parametrize(("case", "changes", "field"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
def test_bad_event_names_the_field(case: str, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        NewEvent.model_validate(payload(changes))
    assert error_fields(info.value) == {field}


@pytest.mark.parametrize(("case", "changes", "field"), BAD_EVENTS, ids=[c[0] for c in BAD_EVENTS])
async def test_bad_event_is_stored_nowhere(
    repo: sysevents.EventRepository, case: str, changes: dict[str, Any], field: str
) -> None:
    good = await repo.add(NewEvent.model_validate(GOOD))
    with pytest.raises(ValidationError):
        await repo.add(NewEvent.model_validate(payload(changes)))
    with pytest.raises(ValidationError):
        await repo.add_many(
            [NewEvent.model_validate(GOOD), NewEvent.model_validate(payload(changes))]
        )
    if field not in ("id", "created_at"):
        patch = {field: changes[field]} if field in changes else {}
        if patch and not (field == "timestamp" and changes[field] is None):
            with pytest.raises(ValidationError):
                await repo.update(good.id, EventPatch.model_validate(patch))
    assert (await repo.list()).total == 1
    assert await repo.get(good.id) == good


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as info:
        NewEvent.model_validate(
            {"event_type": "", "severity": "loud", "message": "", "source": "", "timestamp": 1}
        )
    assert error_fields(info.value) == {"event_type", "severity", "message", "source", "timestamp"}


def test_defaults_and_normalisation() -> None:
    event = NewEvent(event_type="deploy", message="m")
    assert event.severity is Severity.INFO
    assert event.details is None
    assert event.source is None
    assert event.timestamp.tzinfo is UTC
    assert abs(event.timestamp - datetime.now(UTC)) < timedelta(seconds=5)
    local = NewEvent.model_validate(
        {**GOOD, "timestamp": "2024-03-01T12:00:00+02:00", "details": {"t": (1, 2)}}
    )
    assert local.timestamp == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert local.timestamp.tzinfo is UTC
    assert local.details == {"t": [1, 2]}


def test_details_are_copied_not_shared() -> None:
    details: dict[str, Any] = {"list": [1]}
    event = NewEvent(event_type="t", message="m", details=details)
    details["list"].append(2)
    assert event.details == {"list": [1]}


def test_details_json_is_the_measured_form() -> None:
    event = NewEvent(event_type="t", message="m", details={"a": "ü", "b": [1, 2.5]})
    assert event.details_json == '{"a":"ü","b":[1,2.5]}'
    assert json.loads(event.details_json) == event.details


def test_limits_come_from_the_context() -> None:
    small = EventLimits(max_message_bytes=10, max_details_bytes=20)
    with pytest.raises(ValidationError):
        NewEvent.model_validate({**GOOD, "message": "x" * 11}, context={"limits": small})
    with pytest.raises(ValidationError):
        NewEvent.model_validate({**GOOD, "details": {"k": "x" * 20}}, context={"limits": small})
    big = EventLimits(max_message_bytes=10**6)
    assert NewEvent.model_validate({**GOOD, "message": "x" * 100_000}, context={"limits": big})


def test_timestamp_just_inside_a_day_ahead_is_accepted() -> None:
    event = NewEvent.model_validate({**GOOD, "timestamp": future(timedelta(hours=23))})
    assert event.timestamp > datetime.now(UTC)


@pytest.mark.parametrize(
    "text",
    ["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123456+00:00", "20240101T000000Z"],
)
def test_iso_8601_forms(text: str) -> None:
    event = NewEvent.model_validate({**GOOD, "timestamp": text})
    assert event.timestamp.year == 2024


def test_severity_is_ordered() -> None:
    assert Severity.DEBUG < Severity.INFO < Severity.WARNING < Severity.ERROR < Severity.CRITICAL
    assert Severity.ERROR >= "warning"
    assert sorted([Severity.CRITICAL, Severity.DEBUG, Severity.ERROR]) == [
        Severity.DEBUG,
        Severity.ERROR,
        Severity.CRITICAL,
    ]
    assert Severity.at_least("error") == [Severity.ERROR, Severity.CRITICAL]
    assert [s.value for s in Severity] == ["debug", "info", "warning", "error", "critical"]


def test_patch_rules() -> None:
    assert EventPatch().changes() == {}
    assert EventPatch(details=None).changes() == {"details": None}
    for field in ("event_type", "severity", "message", "timestamp"):
        with pytest.raises(ValidationError) as info:
            EventPatch.model_validate({field: None})
        assert field in str(info.value)
    with pytest.raises(ValidationError):
        EventPatch.model_validate({"id": 3})
    with pytest.raises(ValidationError):
        EventPatch.model_validate({"created_at": "2024-01-01T00:00:00Z"})


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**63}, "offset"),
        ({"order": "sideways"}, "order"),
        ({"count": "maybe"}, "count"),
        ({"severity": ["loud"]}, "severity"),
        ({"min_severity": "LOUD"}, "min_severity"),
        ({"event_type": ["x" * 51]}, "event_type"),
        ({"event_type": ["a\x00"]}, "event_type"),
        ({"source": "a\x00"}, "source"),
        ({"since": "2024-01-01T00:00:00"}, "since"),
        ({"until": 1700000000}, "until"),
        ({"cursor": ""}, "cursor"),
        ({"cursor": "c" * 513}, "cursor"),
        ({"unknown": 1}, "unknown"),
        ({"trace_id": "0" * 32}, "trace_id"),
        ({"trace_id": "xyz"}, "trace_id"),
    ],
)
def test_bad_queries_name_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        EventQuery.model_validate(fields)
    assert field in error_fields(info.value)


def test_offset_and_cursor_do_not_mix() -> None:
    with pytest.raises(ValidationError):
        EventQuery(offset=5, cursor="abc")


def test_filters_accept_one_value_or_several() -> None:
    query = EventQuery.model_validate({"event_type": "deploy", "severity": "error"})
    assert query.event_type == ["deploy"]
    assert query.severity == [Severity.ERROR]
    assert EventFilter(severity=["info", "error"], min_severity="warning").severities() == [
        Severity.ERROR
    ]
    plus_two = timezone(timedelta(hours=2))
    since = EventFilter(since=datetime(2024, 1, 1, 2, tzinfo=plus_two)).since
    assert since == datetime(2024, 1, 1, tzinfo=UTC)


def test_filter_key_is_canonical() -> None:
    a = EventFilter(event_type=["b", "a"], severity=["error", "info"])
    b = EventFilter(event_type=["a", "b"], severity=["info", "error"])
    assert a.filter_key() == b.filter_key()
    assert a.filter_key() != EventFilter(event_type=["a"]).filter_key()
    assert EventFilter(source="*").filter_key() != EventFilter().filter_key()
    assert EventFilter(event_type=[]).filter_key() != EventFilter().filter_key()


def test_details_json_follows_the_details_of_a_copy() -> None:
    event = NewEvent(event_type="t", message="m", details={"a": 1})
    assert event.details_json == '{"a":1}'
    changed = event.model_copy(update={"details": {"b": 2}})
    assert changed.details_json == '{"b":2}'
    assert event.details_json == '{"a":1}'
    patch = EventPatch(details={"a": 1})
    assert patch.details_json == '{"a":1}'
    assert patch.model_copy(update={"details": None}).details_json is None


def test_filters_given_as_none_are_no_filters() -> None:
    given = EventFilter(
        event_type=None, severity=None, min_severity=None, source=None, since=None, until=None
    )
    assert given == EventFilter()
    with pytest.raises(ValidationError):
        EventFilter(severity=["info"] * 6)
    with pytest.raises(ValidationError):
        EventFilter(event_type=["t"] * 101)


def test_trace_ids() -> None:
    trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    event = NewEvent.model_validate({**GOOD, "trace_id": trace, "span_id": span})
    assert (event.trace_id, event.span_id) == (trace, span)
    assert NewEvent.model_validate(GOOD).trace_id is None
    patch = EventPatch.model_validate({"trace_id": None, "span_id": None})
    assert patch.changes() == {"trace_id": None, "span_id": None}
    with pytest.raises(ValidationError) as info:
        EventPatch.model_validate({"span_id": "0" * 16})
    assert error_fields(info.value) == {"span_id"}
    # Only a filter on a trace changes the filter's key: older cursors stay valid.
    assert EventQuery(trace_id=trace).filter_key() != EventQuery().filter_key()
    assert EventQuery().filter_key() == "[null,null,null,null,null,null]"
    assert ("trace_id", trace) in EventQuery(trace_id=trace).query_params()
