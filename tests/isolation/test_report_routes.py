"""The KPI, forecast, productivity and operator routes, generated from the app's route table.

- A practice's reports: A's owner and a supervisor assigned to A (only) get, for practice B's slug, the
  same 404 as for a slug that does not exist; their own practice answers.
- The supervisors' productivity report shows nothing of a practice the supervisor is not assigned to.
- The operator roll-up: every caller without the operator role gets 403 (audited), whatever else they hold.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.tenancy.models import Tenant
from tests.coding.conftest import assign
from tests.identity.conftest import make_user
from tests.isolation.test_route_matrix import _strip, http_routes
from tests.reporting.scenario import Scenario, Work, at
from tests.support import Api

MARCH = {"period_from": "2025-03-01", "period_to": "2025-03-31"}
KPI_ROUTES = ("/reports/kpis", "/reports/forecast", "/reports/kpis/{key:str}/claims")


def report_routes(app: Litestar) -> list[str]:
    """The routes, the drill-down's KPI filled in (B has claims behind its denial rate)."""
    return [
        p.replace("{key:str}", "denial_rate")
        for p, m in http_routes(app)
        if m == "GET" and p.startswith("/api/v1/tenants/{tenant_slug") and p.endswith(KPI_ROUTES)
    ]


def operator_routes(app: Litestar) -> list[tuple[str, str]]:
    return [(p, m) for p, m in http_routes(app) if p.startswith("/api/v1/operator")]


@pytest.fixture
async def b_has_data(other_practice_api: Api, owner_engine: AsyncEngine) -> None:
    s = Scenario(owner_engine, other_practice_api)
    claim = await s.claim(service_date=date(2025, 3, 1), charge=12345, charged_at=at(date(2025, 3, 2)))
    await s.event(claim, "submitted", at(date(2025, 3, 2)))
    await s.remit(claim, at(date(2025, 3, 12)), paid=12000, contractual=345)
    await Work(owner_engine, other_practice_api).item(
        kind="coding", status="open", created=at(date(2025, 3, 1)), due=at(date(2025, 3, 2))
    )


async def _callers(
    tenant: Tenant,
    *,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    control: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> dict[str, dict[str, str]]:
    owner = await mint_access_token(
        user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id), sessions=sessions, settings=settings
    )
    user = await make_user(control, ["supervisor"])
    await assign(control, user, tenant)
    boss = await mint_access_token(
        user_principal(Role.SUPERVISOR, user_id=user.id), sessions=sessions, settings=settings
    )
    return {
        name: {"Authorization": f"Bearer {token}"} for name, token in (("owner", owner), ("supervisor", boss))
    }


@pytest.mark.usefixtures("b_has_data")
async def test_reports_of_another_practice_are_a_404(
    *,
    app: Litestar,
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    other_tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    routes = report_routes(app)
    assert len(routes) == len(KPI_ROUTES)
    callers = await _callers(
        tenant, client=client, sessions=sessions, control=control_sessions, settings=settings
    )
    for name, headers in callers.items():
        for path in routes:
            own = await client.get(
                path.replace("{tenant_slug:str}", tenant.slug),
                params=MARCH if "/kpis" in path else None,
                headers=headers,
            )
            assert own.status_code == 200, f"{name} {path}: {own.text}"
            theirs = await client.get(
                path.replace("{tenant_slug:str}", other_tenant.slug),
                params=MARCH if "/kpis" in path else None,
                headers=headers,
            )
            nobody = await client.get(
                path.replace("{tenant_slug:str}", f"no-{uuid.uuid4().hex[:8]}"), headers=headers
            )
            assert theirs.status_code == nobody.status_code == 404, f"{name} {path}: {theirs.text}"
            assert _strip(theirs.json()) == _strip(nobody.json())
            assert "12345" not in theirs.text


@pytest.mark.usefixtures("b_has_data")
async def test_productivity_shows_nothing_of_an_unassigned_practice(
    *,
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    other_tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    callers = await _callers(
        tenant, client=client, sessions=sessions, control=control_sessions, settings=settings
    )
    response = await client.get(
        "/api/v1/billing/reports/productivity",
        params={"since": "2025-03-01", "until": "2025-03-31"},
        headers=callers["supervisor"],
    )
    assert response.status_code == 200, response.text
    assert response.json()["practices"] == [tenant.slug]
    assert other_tenant.slug not in response.text
    assert str(other_tenant.id) not in response.text
    owner = await client.get("/api/v1/billing/reports/productivity", headers=callers["owner"])
    assert owner.status_code == 403


@pytest.mark.parametrize(
    "roles",
    [
        (Role.PRACTICE_OWNER,),
        (Role.PRACTICE_CLIENT,),
        (Role.CODER,),
        (Role.BILLER,),
        (Role.SUPERVISOR,),
        (Role.AUDITOR,),
        (Role.ADMIN,),
        (Role.SUPERVISOR, Role.ADMIN),
    ],
)
async def test_operator_routes_refuse_every_other_role(
    *,
    roles: tuple[Role, ...],
    app: Litestar,
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    routes = operator_routes(app)
    assert routes
    home = tenant.id if set(roles) & {Role.PRACTICE_OWNER, Role.PRACTICE_CLIENT} else None
    # Even with every scope an operator holds (reports:read), the role decides.
    principal = user_principal(*roles, home_tenant=home, mfa=True)
    token = await mint_access_token(principal, sessions=sessions, settings=settings)
    reference: dict[str, Any] | None = None
    for path, method in routes:
        response = await client.request(method, path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 403, f"{roles} {method} {path}: {response.text}"
        body = _strip(response.json())
        reference = reference or body
        assert body == reference
