"""Tests of the shop: the sysevents pytest plugin captures its events in memory."""

import pytest
import shop


def test_an_order_is_recorded(sysevents_events):
    with shop.event_logging() as emitter:
        shop.place_order("A-1", 30)
        emitter.flush()
    event = sysevents_events.assert_one("order_placed", severity="info", order_id="A-1")
    assert event.details["amount"] == 30
    assert event.source == "shop"
    sysevents_events.assert_none("order_refused")


def test_a_refused_order_is_recorded_as_an_error(sysevents_events):
    with shop.event_logging() as emitter:
        with pytest.raises(ValueError, match="positive"):
            shop.place_order("B-2", 0)
        emitter.flush()
    sysevents_events.assert_one("order_refused", min_severity="error", order_id="B-2")
    assert len(sysevents_events) == 1
