from __future__ import annotations

import base64

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.tenancy.models import Tenant
from tests.identity.conftest import make_client


async def test_smoke(client: AsyncTestClient[Litestar], sessions: async_sessionmaker[AsyncSession], tenant: Tenant) -> None:
    issued = await make_client(sessions, tenant)
    basic = base64.b64encode(f"{issued.client.client_id}:{issued.secret}".encode()).decode()
    r = await client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"})
    print(r.status_code, r.text)
    assert r.status_code == 200
