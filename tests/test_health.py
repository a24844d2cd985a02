from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from rcm.kit.migrations import head_revision


async def test_healthz(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_schema_at_head(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "schema": head_revision()}


async def test_openapi_is_served(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/docs/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "RCM API"
