"""The pydantic fast paths of ``sysevents._fast`` give exactly what the public paths give."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sysevents import Event, NewEvent
from sysevents._fast import fast_path_applies, trusted_event
from sysevents.rules import MAX_EVENT_ID, dump_details
from sysevents.stores.postgres.rows import as_stored
from tests.strategies import details, new_events

ids = st.integers(min_value=1, max_value=MAX_EVENT_ID)
CREATED = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def stored_values(new: NewEvent, event_id: int, caller: str = "") -> dict[str, object]:
    """Every field of the stored event, in the model's field order (as the store gives them)."""
    values = {
        "id": event_id,
        **new.model_dump(),
        "created_at": CREATED,
        "written_by": caller or None,
    }
    return {name: values[name] for name in Event.model_fields}


def test_the_fast_path_is_taken() -> None:
    # If this fails, pydantic or the Event model changed shape: every event
    # would take the slow path, correct but slower. Look at _fast.py.
    assert fast_path_applies(Event, tuple(Event.model_fields))


@given(new_events(), ids)
def test_a_trusted_event_equals_a_validated_one(new: NewEvent, event_id: int) -> None:
    values = stored_values(new, event_id)
    fast = trusted_event(Event, copy.deepcopy(values))
    validated = Event.model_validate(copy.deepcopy(values))
    assert fast == validated
    assert fast.model_fields_set == validated.model_fields_set
    assert fast.model_dump() == validated.model_dump()
    assert fast.model_dump_json() == validated.model_dump_json()
    assert fast.model_copy(update={"message": "x"}) == validated.model_copy(update={"message": "x"})
    assert Event.model_validate_json(fast.model_dump_json()) == validated


@given(new_events(), ids)
def test_as_stored_equals_the_event_validated_from_the_new_one(
    new: NewEvent, event_id: int
) -> None:
    stored = as_stored(new, event_id, CREATED, "0f3a9c2e71b4")
    assert stored == Event.model_validate(stored_values(new, event_id, "0f3a9c2e71b4"))
    assert stored.written_by == "0f3a9c2e71b4"
    if new.details is not None:
        assert stored.details is not new.details  # the caller gets its own copy


@given(details)
def test_the_kept_details_text_is_the_text_of_the_details(value: dict[str, object] | None) -> None:
    event = NewEvent.model_validate({"event_type": "t", "message": "m", "details": value})
    assert event.details_json == dump_details(event.details)
    other = NewEvent.model_validate({"event_type": "t", "message": "m", "details": {"x": 1}})
    assert other.details_json == '{"x":1}'
    # Validating another model in between never hands one model's text to another.
    assert event.details_json == dump_details(event.details)
    changed = event.model_copy(update={"details": {"y": [1]}})
    assert changed.details_json == '{"y":[1]}'
    assert event.details_json == dump_details(event.details)
