"""Revocation within seconds: real tokens over the real app, the caller's row changed after they were issued.

A revoked API client's and a deactivated person's tokens stop working; a removed role is gone on the next
request. In the process that made the change at once; in any other within the status TTL.
"""

from __future__ import annotations

import base64
import time

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import AuditEvent
from rcm.identity.principal import Role
from rcm.identity.status import PrincipalStatus
from rcm.identity.testing import user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import assign_staff
from tests.identity.conftest import Mint, idem, make_client, make_user

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


async def _client_token(client: Client, client_id: str, secret: str) -> dict[str, str]:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _admin(mint: Mint) -> dict[str, str]:
    return {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}


async def test_a_revoked_clients_token_is_401_on_the_next_call(
    client: Client, mint: Mint, tenant: Tenant, control_sessions: Sessions, audit_log: list[AuditEvent]
) -> None:
    issued = await make_client(control_sessions, tenant)
    assert issued.secret is not None
    practice = await _client_token(client, issued.client.client_id, issued.secret)
    url = f"/api/v1/tenants/{tenant.slug}/encounters"
    assert (await client.get(url, headers=practice)).status_code == 200

    revoke = f"/api/v1/admin/tenants/{tenant.slug}/clients/{issued.client.client_id}/revoke"
    assert (await client.post(revoke, headers=idem(await _admin(mint)))).status_code == 200

    refused = await client.get(url, headers=practice)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    denied = [e for e in audit_log if e.event_type == "access.denied"]
    assert [e.detail.get("reason") for e in denied] == ["revoked"]
    # On the practice's own chain, naming the client that tried.
    assert denied[0].tenant_id == TenantId(tenant.id)
    assert denied[0].actor is not None
    assert denied[0].actor.client_id == issued.client.client_id


async def test_a_revocation_made_elsewhere_applies_within_the_status_ttl(
    *,
    app: Litestar,
    client: Client,
    tenant: Tenant,
    control_sessions: Sessions,
    owner_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process (here: SQL beneath the app) revokes the client; this process's cache is stale for at
    most the TTL."""
    status: PrincipalStatus = app.state.identity_status
    assert 0 < status.ttl <= 5
    issued = await make_client(control_sessions, tenant)
    assert issued.secret is not None
    practice = await _client_token(client, issued.client.client_id, issued.secret)
    url = f"/api/v1/tenants/{tenant.slug}/encounters"
    assert (await client.get(url, headers=practice)).status_code == 200
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE rcm.api_client SET status = 'revoked', revoked_at = now() WHERE client_id = :c"),
            {"c": issued.client.client_id},
        )
    # Within the TTL this process may still answer from its cache...
    assert (await client.get(url, headers=practice)).status_code == 200
    # ...and once the TTL has passed it asks again and refuses.
    later = time.monotonic() + status.ttl + 0.1
    monkeypatch.setattr(status, "_clock", lambda: later)
    assert (await client.get(url, headers=practice)).status_code == 401


async def test_a_deactivated_persons_token_is_401_on_the_next_request(
    client: Client, mint: Mint, tenant: Tenant, control_sessions: Sessions
) -> None:
    coder = await make_user(control_sessions, ["coder"])
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [coder.email])
    headers = {"Authorization": f"Bearer {await mint(user_principal(Role.CODER, user_id=coder.id))}"}
    url = f"/api/v1/tenants/{tenant.slug}/encounters"
    assert (await client.get(url, headers=headers)).status_code == 200

    stop = await client.put(
        f"/api/v1/admin/people/{coder.id}/active", json={"active": False}, headers=await _admin(mint)
    )
    assert stop.status_code == 200, stop.text
    assert stop.json()["active"] is False
    assert (await client.get(url, headers=headers)).status_code == 401

    again = await client.put(
        f"/api/v1/admin/people/{coder.id}/active", json={"active": True}, headers=await _admin(mint)
    )
    assert again.status_code == 200
    assert (await client.get(url, headers=headers)).status_code == 200


async def test_a_removed_role_is_403_on_the_next_request(
    client: Client, mint: Mint, control_sessions: Sessions
) -> None:
    admin = await make_user(control_sessions, ["admin"])
    somebody = await make_user(control_sessions, ["biller"])
    headers = {
        "Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, user_id=admin.id, mfa=True))}"
    }
    route = f"/api/v1/admin/people/{somebody.id}/active"
    assert (await client.put(route, json={"active": True}, headers=headers)).status_code == 200

    demoted = await client.put(
        f"/api/v1/admin/people/{admin.id}/roles", json={"roles": ["auditor"]}, headers=await _admin(mint)
    )
    assert demoted.status_code == 200, demoted.text
    refused = await client.put(route, json={"active": True}, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["title"] == "Role required"


async def test_a_removed_assignment_ends_an_auditors_reading_on_the_next_request(
    client: Client, mint: Mint, tenant: Tenant, control_sessions: Sessions
) -> None:
    auditor = await make_user(control_sessions, ["auditor"])
    admin = await _admin(mint)
    assign = f"/api/v1/admin/people/{auditor.id}/assignments"
    assert (await client.post(assign, json={"tenant": tenant.slug}, headers=idem(admin))).status_code == 201
    token = await mint(user_principal(Role.AUDITOR, user_id=auditor.id, auditor_tenants=(tenant.id,)))
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/audit/events", headers=headers)).status_code == 200

    assert (await client.delete(f"{assign}/{tenant.slug}", headers=admin)).status_code == 204
    # The token still names the practice; the live assignments no longer do.
    assert (await client.get("/api/v1/audit/events", headers=headers)).status_code == 403
