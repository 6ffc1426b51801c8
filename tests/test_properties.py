"""Properties of the model: what is accepted survives every round trip unchanged."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sysevents import MemoryEventRepository, NewEvent
from tests.strategies import details, event_types, messages, new_events, text_chars


@given(new_events())
def test_json_round_trip(event: NewEvent) -> None:
    again = NewEvent.model_validate_json(event.model_dump_json())
    assert again == event


@given(new_events())
def test_python_round_trip(event: NewEvent) -> None:
    assert NewEvent.model_validate(event.model_dump()) == event


@given(details)
def test_details_survive_their_stored_form(value: dict[str, object] | None) -> None:
    event = NewEvent(event_type="t", message="m", details=value)
    text = event.details_json
    assert (None if text is None else json.loads(text)) == event.details
    # Validating the stored form again changes nothing: normalisation is idempotent.
    again = NewEvent(event_type="t", message="m", details=json.loads(text or "null"))
    assert again.details == event.details
    assert again.details_json == text


@given(new_events())
def test_memory_store_returns_what_was_sent(event: NewEvent) -> None:
    async def scenario() -> None:
        async with MemoryEventRepository() as repo:
            stored = await repo.add(event)
            fetched = await repo.get(stored.id)
            assert fetched is not None
            assert (
                fetched.model_dump(exclude={"id", "created_at", "written_by"}) == event.model_dump()
            )
            assert fetched.written_by is None  # no caller given

    asyncio.run(scenario())


@given(messages, st.integers(min_value=0, max_value=200), st.sampled_from(["\x00", "\ud800"]))
def test_nul_or_surrogate_anywhere_in_a_message_is_refused(
    message: str, where: int, bad: str
) -> None:
    where = min(where, len(message))
    with pytest.raises(ValidationError) as info:
        NewEvent(event_type="t", message=message[:where] + bad + message[where:])
    assert info.value.errors()[0]["loc"] == ("message",)


@given(event_types, st.text(text_chars, max_size=5), st.sampled_from(["\n", "\x7f", "\x9b"]))
def test_control_characters_in_a_type_are_refused(kind: str, tail: str, control: str) -> None:
    with pytest.raises(ValidationError) as info:
        NewEvent(event_type=(kind + control + tail)[-50:], message="m")
    assert info.value.errors()[0]["loc"] == ("event_type",)
