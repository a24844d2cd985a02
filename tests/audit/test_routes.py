"""Routes exist, appear in the OpenAPI document and refuse callers without a principal (the authorised
paths, with real tokens, are in ``test_api.py``)."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient


@pytest.mark.parametrize("path", ["/events", "/events.csv", "/events.ndjson", "/verify"])
async def test_anonymous_callers_are_refused(client: AsyncTestClient[Litestar], path: str) -> None:
    response = await client.get(f"/api/v1/audit{path}")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_routes_are_documented(client: AsyncTestClient[Litestar]) -> None:
    paths = (await client.get("/docs/openapi.json")).json()["paths"]
    assert {"/api/v1/audit/events", "/api/v1/audit/events.csv", "/api/v1/audit/verify"} <= set(paths)
