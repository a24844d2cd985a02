"""Cookie callers across practices: an owner of practice A, signed in through the browser login, gets the same
404 on every dashboard page, drill-down, saved-view form and report route (exports included) of practice B,
and on A's own routes given B's saved view; each refusal is audited and B's rows stay as they were.

The routes are read from the app's route table (every page under ``/app/t/{tenant_slug}`` and every route
under ``/api/v1/tenants/{tenant_slug}/reports``), so a page added later is covered the day it lands."""

from __future__ import annotations

import uuid

from httpx import Response
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.tenancy.models import Tenant
from tests.identity.conftest import make_user
from tests.isolation.test_route_matrix import PARAM, fill, http_routes
from tests.web.support import browser_login

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
PREFIXES = ("/app/t/{tenant_slug", "/api/v1/tenants/{tenant_slug:str}/reports")
# Query parameters a route needs before it reaches the tenant (none does: the tenant is checked first, but
# a drill-down's required parameters make the request well-formed all the same).
QUERIES = {"/cash-flow/entries": "?date_from=2025-03-01&date_to=2025-03-31"}
# A well-formed body for each JSON write (by the path's last segment).
BODIES = {
    "views": {"name": "x", "report": "dashboard", "parameters": {}},
    "close": {"month": "2025-01"},
}


async def _denials(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM rcm.audit_event WHERE event_type = 'access.denied'")
        )
        return int(found.scalar_one())


async def _views_of(owner_engine: AsyncEngine, tenant: Tenant) -> list[str]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id::text || name || parameters::text FROM rcm.saved_view WHERE tenant_id = :t"),
            {"t": tenant.id},
        )
        return sorted(rows.scalars())


async def test_an_owner_with_a_cookie_sees_nothing_of_another_practice(
    *,
    app: Litestar,
    client: Client,
    tenant: Tenant,
    other_tenant: Tenant,
    control_sessions: Sessions,
    sessions: Sessions,
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    # Practice B's owner saves a view (through the API, with B's own token).
    token = await mint_access_token(
        user_principal(Role.PRACTICE_OWNER, home_tenant=other_tenant.id), sessions=sessions, settings=settings
    )
    saved = await client.post(
        f"/api/v1/tenants/{other_tenant.slug}/reports/views",
        json={"name": "B's view", "report": "dashboard", "parameters": {"grain": "week"}},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
    )
    assert saved.status_code == 201, saved.text
    b_view = saved.json()["id"]
    before = await _views_of(owner_engine, other_tenant)

    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    browser = await browser_login(client, owner.email, next_path=f"/app/t/{tenant.slug}")
    routes = [(p, m) for p, m in http_routes(app) if p.startswith(PREFIXES)]
    assert {p for p, _ in routes} >= {
        "/app/t/{tenant_slug:str}",
        "/app/t/{tenant_slug:str}/claims",
        "/app/t/{tenant_slug:str}/views",
        "/app/t/{tenant_slug:str}/views/{view_id:uuid}/delete",
        "/api/v1/tenants/{tenant_slug:str}/reports/views",
        "/api/v1/tenants/{tenant_slug:str}/reports/cash-flow.csv",
        "/api/v1/tenants/{tenant_slug:str}/reports/ar-aging/claims",
    }
    calls = 0
    for path, method in routes:
        slugs = [other_tenant.slug]
        if len(PARAM.findall(path)) > 1:
            slugs.append(tenant.slug)  # my own practice's path, the other practice's view
        query = next((q for suffix, q in QUERIES.items() if path.endswith(suffix)), "")

        async def call(url: str, method: str = method, path: str = path, query: str = query) -> Response:
            if method == "POST" and path.startswith("/app/"):
                form = {"_csrf": browser.csrf, "name": "x", "report": "dashboard"}
                return await client.post(url + query, data=form, headers=browser.headers())
            headers = {**browser.headers(), "Idempotency-Key": uuid.uuid4().hex}
            body = BODIES[path.rsplit("/", 1)[-1]] if method == "POST" else None
            return await client.request(
                method, url + query, json=body, headers=headers, follow_redirects=False
            )

        for slug in slugs:
            url = fill(path, {"tenant_slug": slug, "view_id": b_view})
            denials = await _denials(owner_engine)
            response = await call(url)
            calls += 1
            if response.status_code == 403:
                # A route an owner may not use at all (the billing company's own): the same 403 at home,
                # so the answer tells nothing about the other practice.
                own = await call(fill(path, {"tenant_slug": tenant.slug, "view_id": b_view}))
                assert own.status_code == 403, (method, path)
                continue
            assert response.status_code == 404, (method, url, response.status_code, response.text[:300])
            if slug == other_tenant.slug:
                assert await _denials(owner_engine) == denials + 1, f"{method} {url}: no denial audit event"
            assert "B's view" not in response.text
    assert calls > len(routes)
    assert await _views_of(owner_engine, other_tenant) == before
