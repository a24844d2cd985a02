"""Admin API: onboarding, API client issue/rotate/revoke, break-glass report."""

from __future__ import annotations

import base64
import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import AuditEvent
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.tenancy.models import Tenant
from tests.identity.conftest import Mint, idem, make_user

Client = AsyncTestClient[Litestar]


async def _token_status(client: Client, client_id: str, secret: str) -> int:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    return response.status_code


async def test_issue_rotate_revoke_client(
    client: Client, mint: Mint, tenant: Tenant, audit_log: list[AuditEvent]
) -> None:
    headers = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}
    base = f"/api/v1/admin/tenants/{tenant.slug}/clients"
    issued = await client.post(base, json={"name": "Sunrise EHR"}, headers=idem(headers))
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["tenant_id"] == str(tenant.id)
    assert body["client_secret"]
    client_id, first_secret = body["client_id"], body["client_secret"]
    assert await _token_status(client, client_id, first_secret) == 200

    rotated = await client.post(f"{base}/{client_id}/rotate", headers=idem(headers))
    assert rotated.status_code == 200
    second_secret = rotated.json()["client_secret"]
    assert second_secret != first_secret
    assert await _token_status(client, client_id, first_secret) == 401
    assert await _token_status(client, client_id, second_secret) == 200

    revoked = await client.post(f"{base}/{client_id}/revoke", headers=idem(headers))
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["client_secret"] is None
    assert await _token_status(client, client_id, second_secret) == 401
    admin_events = [e.event_type for e in audit_log if e.event_type.startswith("api_client.")]
    assert admin_events == ["api_client.issue", "api_client.rotate", "api_client.revoke"]


async def test_client_of_another_tenant_is_404(
    client: Client, mint: Mint, tenant: Tenant, other_tenant: Tenant
) -> None:
    headers = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}
    issued = await client.post(
        f"/api/v1/admin/tenants/{tenant.slug}/clients", json={"name": "EHR"}, headers=idem(headers)
    )
    client_id = issued.json()["client_id"]
    wrong = await client.post(
        f"/api/v1/admin/tenants/{other_tenant.slug}/clients/{client_id}/rotate", headers=idem(headers)
    )
    assert wrong.status_code == 404
    bad_scope = await client.post(
        f"/api/v1/admin/tenants/{tenant.slug}/clients",
        json={"name": "EHR", "scopes": ["admin"]},
        headers=idem(headers),
    )
    assert bad_scope.status_code == 422


async def test_onboard_tenant_from_manifest(client: Client, mint: Mint) -> None:
    headers = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}
    slug = f"onboard-{uuid.uuid4().hex[:8]}"
    manifest = {
        "slug": slug,
        "name": "Onboarded Practice (TEST)",
        "billing_provider": {"npi": "1234567893", "name": "Onboarded PC", "taxonomy": "207Q00000X"},
    }
    created = await client.post("/api/v1/admin/tenants", json=manifest, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["slug"] == slug
    assert created.json()["created"] is True
    again = await client.post("/api/v1/admin/tenants", json=manifest, headers=headers)
    assert again.json()["created"] is False
    invalid = await client.post("/api/v1/admin/tenants", json={"slug": slug}, headers=headers)
    assert invalid.status_code == 422
    coder = {"Authorization": f"Bearer {await mint(user_principal(Role.CODER, mfa=True))}"}
    assert (await client.post("/api/v1/admin/tenants", json=manifest, headers=coder)).status_code == 403


async def test_break_glass_report_spans_tenants(
    *,
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    mint: Mint,
    tenant: Tenant,
    other_tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["supervisor"])
    token = await mint(user_principal(Role.SUPERVISOR, user_id=user.id, mfa=True))
    staff = {"Authorization": f"Bearer {token}"}
    body = {"category": "payer_deadline", "reason": "SLA breach review: appeals due to the payer today"}
    ids = set()
    for t in (tenant, other_tenant):
        response = await client.post(f"/api/v1/tenants/{t.slug}/break-glass", json=body, headers=idem(staff))
        assert response.status_code == 201
        ids.add(response.json()["id"])
    admin = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}
    report = await client.get("/api/v1/admin/break-glass", headers=admin)
    assert report.status_code == 200
    assert ids <= {g["id"] for g in report.json()}


async def test_issuing_credentials_twice_with_one_key_issues_once(
    client: Client, mint: Mint, tenant: Tenant, owner_engine: AsyncEngine
) -> None:
    headers = idem({"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"})
    url = f"/api/v1/admin/tenants/{tenant.slug}/clients"
    first = await client.post(url, json={"name": "EHR once"}, headers=headers)
    retry = await client.post(url, json={"name": "EHR once"}, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert retry.headers["Idempotent-Replayed"] == "true"
    async with owner_engine.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(*) FROM rcm.api_client WHERE tenant_id = :t AND name = 'EHR once'"),
                {"t": tenant.id},
            )
        ).scalar_one()
    assert count == 1
    other_body = await client.post(url, json={"name": "EHR twice"}, headers=headers)
    assert other_body.status_code == 422
    missing = await client.post(
        url, json={"name": "EHR none"}, headers={"Authorization": headers["Authorization"]}
    )
    assert missing.status_code == 422
