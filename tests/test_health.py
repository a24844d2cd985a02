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
    assert response.json() == {"status": "ready", "schema": head_revision(), "rate_limit_store": "memory"}


async def test_openapi_is_served(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/docs/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "RCM API"


async def test_openapi_documents_bodies_and_errors_of_tenant_routes(
    client: AsyncTestClient[Litestar],
) -> None:
    spec = (await client.get("/docs/openapi.json")).json()
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith("/api/v1/tenants/{tenant_slug}/") and not path.endswith("/break-glass")
        for method, op in item.items()
    ]
    assert len(operations) >= 12
    for path, method, op in operations:
        for status in ("401", "403", "404", "422", "429"):
            content = op["responses"][status]["content"]
            assert content["application/problem+json"]["schema"]["$ref"] == "#/components/schemas/Problem"
        if method == "post" and not path.endswith("/search"):
            # 201 for a create; 202 for an accepted job (bulk intake); 200 for a change (correction, cancel).
            success = next(code for code in ("201", "202", "200") if code in op["responses"])
            created = op["responses"][success]["content"]["application/json"]["schema"]
            assert created["$ref"].startswith("#/components/schemas/"), (path, created)
