from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from tests.support import Api, encounter_payload


async def test_owner_sees_totals_in_cents_and_no_phi(
    practice_api: Api,
    tenant: Tenant,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    for _ in range(2):
        assert (await practice_api.post("/encounters", encounter_payload())).status_code == 201
    owner = user_principal(Role.PRACTICE_OWNER, home_tenant=TenantId(tenant.id))
    token = await mint_access_token(owner, sessions=sessions, settings=settings)
    owner_api = Api(client, token, tenant.slug)
    response = await owner_api.get("/reports/intake-summary")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["encounters"] == 2
    assert body["charge_cents"] == 2 * (12500 + 1650)
    assert body["by_status"] == [{"status": "needs_coding", "encounters": 2, "charge_cents": 28300}]
    assert set(body) == {"service_date_from", "service_date_to", "encounters", "charge_cents", "by_status"}
    # Owners do not read patients or encounters.
    assert (await owner_api.get("/encounters")).status_code == 403
