"""Routes exist, appear in the OpenAPI document and refuse callers without a principal (the authorised
paths, with real tokens, are in ``test_api.py``)."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient


@pytest.mark.parametrize("path", ["/events", "/events.csv", "/events.ndjson", "/verify"])
async def test_anonymous_callers_are_refused(client: AsyncTestClient[Litestar], path: str) -> None:
    response = await client.request("POST" if path == "/verify" else "GET", f"/api/v1/audit{path}")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_routes_are_documented(client: AsyncTestClient[Litestar]) -> None:
    paths = (await client.get("/docs/openapi.json")).json()["paths"]
    assert {"/api/v1/audit/events", "/api/v1/audit/events.csv", "/api/v1/audit/verify"} <= set(paths)
    assert set(paths["/api/v1/audit/verify"]) == {"post"}  # verifying reads every event: never a GET


async def test_a_verification_cannot_be_started_by_a_get(client: AsyncTestClient[Litestar]) -> None:
    # A link or an image on another site is a GET: verifying reads every event, so it is a POST only.
    assert (await client.get("/api/v1/audit/verify")).status_code == 405
