"""OTLP/HTTP log ingest: the OpenTelemetry SDK's own exporters ship log records to a running API."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter as JsonExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as ProtoExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from sysevents import MemoryEventRepository, Settings
from sysevents.keys import Scope, split_key
from sysevents_http import create_app

from .live import LiveApp

WHEN = datetime(2024, 5, 17, 12, 30, 45, 123456, tzinfo=UTC)


def nanos(when: datetime) -> int:
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


class Served:
    def __init__(self, url: str, repo: MemoryEventRepository, keys: dict[str, str]) -> None:
        self.url, self.repo, self.keys = url, repo, keys


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    repo = MemoryEventRepository()
    keys: dict[str, str] = {}

    async def make_keys() -> None:
        for scope in (Scope.READ, Scope.WRITE):
            _, keys[scope.value] = await repo.keys.create_key(scope.value, frozenset({scope}))

    asyncio.run(make_keys())
    app = create_app(Settings(rate_limit="off"), repository=repo)
    with LiveApp(app) as live:
        yield Served(live.url, repo, keys)


def ship(served: Served, encoding: str) -> tuple[list[requests.Response], tuple[str, str]]:
    """Log five records through the SDK and its exporter; the answers, and the span's ids."""
    answers: list[requests.Response] = []
    session = requests.Session()
    session.hooks["response"].append(lambda response, *a, **k: answers.append(response))
    endpoint = served.url + "/v1/logs"
    headers = {"Authorization": f"Bearer {served.keys['write']}"}
    exporter: Any
    if encoding == "protobuf":
        exporter = ProtoExporter(endpoint=endpoint, headers=headers, session=session)
    else:
        exporter = JsonExporter(
            endpoint=endpoint, headers=headers, _transport=RequestsHTTPTransport(session=session)
        )
    resource = Resource.create({"service.name": f"checkout-{encoding}", "region": "eu-1"})
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    otel_logger = provider.get_logger("tests.otlp")
    tracer = TracerProvider().get_tracer("tests.otlp")
    observed = WHEN + timedelta(seconds=3)
    with tracer.start_as_current_span("order") as span:
        otel_logger.emit(
            timestamp=nanos(WHEN),
            observed_timestamp=nanos(observed),
            severity_number=SeverityNumber.ERROR,
            body="payment declined",
            attributes={"order.id": 42, "retry": True, "amount": 9.5, "tags": ["a", "b"]},
        )
    otel_logger.emit(
        timestamp=nanos(WHEN),
        severity_number=SeverityNumber.DEBUG2,
        body={"cart": {"items": 3}, "ok": False},
        event_name="cart.checked",
    )
    otel_logger.emit(
        observed_timestamp=nanos(observed),
        severity_number=SeverityNumber.FATAL,
        body="login storm",
        attributes={"event.name": "user.login"},
    )
    otel_logger.emit(timestamp=nanos(WHEN), body="plain")
    # Two days ahead: no event may be that far in the future, so it is refused.
    otel_logger.emit(
        timestamp=nanos(datetime.now(UTC) + timedelta(days=2)),
        severity_number=SeverityNumber.WARN,
        body="from the future",
    )
    provider.shutdown()
    context = span.get_span_context()
    return answers, (format(context.trace_id, "032x"), format(context.span_id, "016x"))


def partial_success(response: requests.Response, encoding: str) -> tuple[int, str]:
    if encoding == "protobuf":
        assert response.headers["content-type"].startswith("application/x-protobuf")
        answer = ExportLogsServiceResponse()
        answer.ParseFromString(response.content)
        return answer.partial_success.rejected_log_records, answer.partial_success.error_message
    assert response.headers["content-type"].startswith("application/json")
    body = response.json().get("partialSuccess") or {}
    return int(body.get("rejectedLogRecords", 0)), body.get("errorMessage", "")


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_the_sdk_exporter_ships_logs_as_events(served: Served, encoding: str) -> None:
    answers, (trace_id, span_id) = ship(served, encoding)
    assert [a.status_code for a in answers] == [200] * 5
    # One record per export (a simple processor): the last is refused, the others stored.
    assert [partial_success(a, encoding)[0] for a in answers] == [0, 0, 0, 0, 1]
    message = partial_success(answers[-1], encoding)[1]
    assert "timestamp" in message
    assert "log record 0" in message

    source = f"checkout-{encoding}"
    stored = [e for e in served.repo.snapshot() if e.source == source]
    by_message = {e.message: e for e in stored}
    assert len(stored) == 4
    assert "from the future" not in by_message
    resource = {
        "service.name": source,
        "region": "eu-1",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
    }

    def details_of(event: Any) -> dict[str, Any]:
        details = dict(event.details)
        got = details.pop("resource")
        assert {k: got[k] for k in resource} == resource
        return details

    declined = by_message["payment declined"]
    assert declined.event_type == "otel.log"
    assert declined.severity == "error"
    assert declined.timestamp == WHEN
    assert (declined.trace_id, declined.span_id) == (trace_id, span_id)
    assert details_of(declined) == {
        "order.id": 42,
        "retry": True,
        "amount": 9.5,
        "tags": ["a", "b"],
    }

    cart = by_message['{"cart":{"items":3},"ok":false}']
    assert cart.event_type == "cart.checked"
    assert cart.severity == "debug"
    assert (cart.trace_id, cart.span_id) == (None, None)
    assert details_of(cart) == {}

    storm = by_message["login storm"]
    assert storm.event_type == "user.login"
    assert storm.severity == "critical"
    assert storm.timestamp == WHEN + timedelta(seconds=3)  # the observed time
    assert details_of(storm) == {"event.name": "user.login"}

    plain = by_message["plain"]
    assert (plain.event_type, plain.severity, plain.timestamp) == ("otel.log", "info", WHEN)


def otlp_json(*records: dict[str, Any], service: str = "hand-made") -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeLogs": [{"scope": {"name": "s"}, "logRecords": list(records)}],
            }
        ]
    }


def post(served: Served, body: Any, *, key: str | None = "write", **headers: str) -> httpx.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {served.keys[key]}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.setdefault("Content-Type", "application/json")
    return httpx.post(served.url + "/v1/logs", content=content, headers=headers, timeout=10)


def test_json_details_of_the_mapping(served: Served) -> None:
    trace_id, span_id = "5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B174"
    answer = post(
        served,
        otlp_json(
            {
                "timeUnixNano": str(nanos(WHEN)),
                "severityNumber": 14,
                "body": {"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "7"}}]}},
                "traceId": trace_id,
                "spanId": span_id,
                "attributes": [
                    {"key": "n", "value": {"intValue": "12345678901"}},
                    {"key": "list", "value": {"arrayValue": {"values": [{"boolValue": True}]}}},
                ],
            },
            {"severityNumber": 30, "body": {"stringValue": "bad severity"}},
            {"timeUnixNano": "soon", "body": {"stringValue": "bad time"}},
            {"body": {"stringValue": "x"}, "traceId": "00" * 16, "spanId": "00" * 8},
            service="mapping",
        ),
    )
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedLogRecords"] == "2"
    assert "log record 1" in answer.json()["partialSuccess"]["errorMessage"]
    assert "log record 2" in answer.json()["partialSuccess"]["errorMessage"]
    stored = {e.message: e for e in served.repo.snapshot() if e.source == "mapping"}
    assert set(stored) == {'{"k":7}', "x"}
    event = stored['{"k":7}']
    assert event.severity == "warning"
    assert (event.trace_id, event.span_id) == (trace_id.lower(), span_id.lower())
    assert event.details == {
        "n": 12345678901,
        "list": [True],
        "resource": {"service.name": "mapping"},
    }
    assert (stored["x"].trace_id, stored["x"].span_id) == (None, None)  # all zeros: no trace


def test_gzip_and_the_answers_of_a_bad_request(served: Served) -> None:
    body = json.dumps(otlp_json({"body": {"stringValue": "zipped"}}, service="gz")).encode()
    zipped = post(served, gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert (zipped.status_code, zipped.json()) == (200, {})
    assert [e.message for e in served.repo.snapshot() if e.source == "gz"] == ["zipped"]

    assert post(served, b"{not json").status_code == 400
    assert post(served, {"resourceLogs": 5}).json()["code"] == 3
    bomb = gzip.compress(b" " * (64 << 20))
    assert post(served, bomb, **{"Content-Encoding": "gzip"}).status_code == 400
    assert (
        post(served, b"\xff\x00", **{"Content-Type": "application/x-protobuf"}).status_code == 400
    )
    refused = post(served, b"{}", **{"Content-Type": "text/plain"})
    assert refused.status_code == 415
    assert post(served, b"{}", key=None).status_code == 401
    assert post(served, b"{}", key="read").status_code == 403


def test_trace_id_is_a_query_filter(served: Served) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    post(served, otlp_json({"body": {"stringValue": "traced"}, "traceId": trace_id}))
    headers = {"Authorization": f"Bearer {served.keys['read']}"}
    page = httpx.get(
        served.url + "/api/events", params={"trace_id": trace_id}, headers=headers, timeout=10
    )
    assert page.status_code == 200
    assert [e["message"] for e in page.json()["items"]] == ["traced"]
    stats = httpx.get(
        served.url + "/api/events/stats", params={"trace_id": trace_id}, headers=headers
    )
    assert stats.json()["total"] == 1
    bad = httpx.get(served.url + "/api/events", params={"trace_id": "XYZ"}, headers=headers)
    assert bad.status_code == 400
    assert [e["field"] for e in bad.json()["errors"]] == ["trace_id"]


def test_records_name_their_key_and_may_not_use_reserved_types(served: Served) -> None:
    answer = post(
        served,
        otlp_json(
            {"body": {"stringValue": "kept"}},
            {"body": {"stringValue": "forged"}, "eventName": "sysevents.event_deleted"},
            service="provenance",
        ),
    )
    assert answer.status_code == 200
    assert answer.json()["partialSuccess"]["rejectedLogRecords"] == "1"
    assert "log record 1" in answer.json()["partialSuccess"]["errorMessage"]
    stored = [e for e in served.repo.snapshot() if e.source == "provenance"]
    assert [e.message for e in stored] == ["kept"]
    key = split_key(served.keys["write"])
    assert key is not None
    assert stored[0].written_by == key[0]
