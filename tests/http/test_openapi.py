"""The OpenAPI document is valid OpenAPI, and says what the API does."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from openapi_spec_validator import validate

from sysevents import MemoryEventRepository
from sysevents_http import HttpOptions, create_app


async def document() -> dict[str, Any]:
    app = create_app(repository=MemoryEventRepository(), options=HttpOptions())
    async with AsyncTestClient(app) as client:
        response = await client.get("/openapi.json")
        assert response.status_code == 200
        doc: dict[str, Any] = response.json()
        return doc


async def test_the_document_is_valid_openapi() -> None:
    doc = await document()
    validate(doc)  # raises, naming the first error, on an invalid document


async def test_every_operation_and_status_is_documented() -> None:
    paths = (await document())["paths"]
    expected = {
        ("/api/events", "post"): {"201", "400", "413", "415", "422", "503"},
        ("/api/events", "get"): {"200", "400", "503"},
        ("/api/events/batch", "post"): {"201", "400", "413", "415", "422", "503"},
        ("/api/events/stats", "get"): {"200", "400", "503"},
        ("/api/events/{event_id}", "get"): {"200", "400", "404", "503"},
        ("/api/events/{event_id}", "put"): {"200", "400", "404", "413", "415", "503"},
        ("/api/events/{event_id}", "delete"): {"204", "400", "404", "503"},
        ("/api/health", "get"): {"200"},
        ("/api/health/db", "get"): {"200", "503"},
    }
    for (path, method), statuses in expected.items():
        documented = set(paths[path][method]["responses"])
        assert statuses <= documented, (path, method, statuses - documented)


async def test_the_location_header_has_a_schema() -> None:
    created = (await document())["paths"]["/api/events"]["post"]["responses"]["201"]
    assert created["headers"]["Location"]["schema"]["type"] == "string"


async def test_the_filters_are_documented_on_every_reading_route() -> None:
    paths = (await document())["paths"]
    for path in ("/api/events", "/api/events/stats"):
        names = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert {"event_type", "severity", "min_severity", "source", "since", "until"} <= names


async def test_the_document_declares_the_keys_and_each_operations_scope() -> None:
    doc = await document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    needs = {
        ("/api/events", "get"): "read",
        ("/api/events", "post"): "write",
        ("/api/events/batch", "post"): "write",
        ("/api/events/stats", "get"): "read",
        ("/api/events/{event_id}", "get"): "read",
        ("/api/events/{event_id}", "put"): "admin",
        ("/api/events/{event_id}", "delete"): "admin",
        ("/api/keys", "get"): "admin",
        ("/api/keys", "post"): "admin",
        ("/api/keys/{name}", "delete"): "admin",
    }
    for (path, method), scope in needs.items():
        operation = doc["paths"][path][method]
        assert operation["security"] == [{"bearer": [scope]}, {"apiKey": [scope]}], (path, method)
        assert {"401", "403", "429"} <= set(operation["responses"])
    for path in ("/api/health", "/api/health/db"):
        assert "security" not in doc["paths"][path]["get"]
