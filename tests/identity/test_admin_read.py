"""Read-only admin API: practices, their API clients (never credentials) and people, keyset-paged, audited,
and only for an admin with the admin scope and a second factor."""

from __future__ import annotations

import uuid
from typing import Any

from joserfc.jwk import ECKey
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, AuditEvent
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import PLATFORM_TENANT, TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import assign_staff
from tests.identity.conftest import Mint, make_client, make_user

Client = AsyncTestClient[Litestar]
ADMIN = "/api/v1/admin"


async def _admin(mint: Mint) -> dict[str, str]:
    return {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}


async def _all_pages(
    client: Client, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Every item of a keyset-paged list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def _reads(audit_log: list[AuditEvent], event_type: str) -> list[AuditEvent]:
    return [e for e in audit_log if e.event_type == event_type and e.action is Action.READ]


async def test_admin_lists_and_reads_practices(
    client: Client, mint: Mint, tenant: Tenant, other_tenant: Tenant, audit_log: list[AuditEvent]
) -> None:
    headers = await _admin(mint)
    first = await client.get(f"{ADMIN}/tenants", params={"limit": 1}, headers=headers)
    assert first.status_code == 200, first.text
    assert len(first.json()["items"]) == 1
    assert first.json()["next_cursor"]
    listed = await _all_pages(client, f"{ADMIN}/tenants", headers, limit=200)
    ids = [t["id"] for t in listed]
    assert len(ids) == len(set(ids))  # pages neither repeat nor skip
    assert ids[0] == first.json()["items"][0]["id"]
    by_slug = {t["slug"]: t for t in listed}
    assert by_slug[tenant.slug] == {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "name": tenant.name,
        "status": "active",
        "created_at": by_slug[tenant.slug]["created_at"],
        "updated_at": by_slug[tenant.slug]["updated_at"],
    }
    assert other_tenant.slug in by_slug

    read = await client.get(f"{ADMIN}/tenants/{tenant.slug}", headers=headers)
    assert read.status_code == 200
    assert read.json()["id"] == str(tenant.id)
    assert read.json()["manifest"]["billing_provider"]["npi"] == "1003000126"
    missing = await client.get(f"{ADMIN}/tenants/no-such-practice-{uuid.uuid4().hex[:6]}", headers=headers)
    assert missing.status_code == 404
    bad_cursor = await client.get(f"{ADMIN}/tenants", params={"cursor": "not-a-cursor"}, headers=headers)
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"][0]["pointer"] == "query:cursor"

    lists = _reads(audit_log, "tenant.list")
    assert lists
    assert lists[0].tenant_id == PLATFORM_TENANT
    assert lists[0].resource_ids == (uuid.UUID(first.json()["items"][0]["id"]),)
    (tenant_read,) = _reads(audit_log, "tenant.read")
    assert tenant_read.tenant_id == TenantId(tenant.id)
    assert tenant_read.resource_ids == (tenant.id,)


async def test_admin_lists_a_practices_clients_without_credentials(
    *,
    client: Client,
    mint: Mint,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    audit_log: list[AuditEvent],
) -> None:
    basic = await make_client(control_sessions, tenant)
    public = ECKey.generate_key("P-256", private=True, auto_kid=True).as_dict(private=False)
    jwks = {"keys": [public]}
    keyed = await make_client(control_sessions, tenant, auth_method="private_key_jwt", jwks=jwks)
    await make_client(control_sessions, other_tenant)
    headers = await _admin(mint)
    url = f"{ADMIN}/tenants/{tenant.slug}/clients"

    response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert basic.secret
    assert basic.secret not in response.text
    items = response.json()["items"]
    assert [c["client_id"] for c in items] == [basic.client.client_id, keyed.client.client_id]
    for item in items:
        assert set(item) == {
            "client_id",
            "tenant_id",
            "name",
            "auth_method",
            "scopes",
            "status",
            "created_at",
            "rotated_at",
            "revoked_at",
        }
        assert item["tenant_id"] == str(tenant.id)
    assert items[1]["auth_method"] == "private_key_jwt"

    page_one = (await client.get(url, params={"limit": 1}, headers=headers)).json()
    assert [c["client_id"] for c in page_one["items"]] == [basic.client.client_id]
    page_two = (
        await client.get(url, params={"limit": 1, "cursor": page_one["next_cursor"]}, headers=headers)
    ).json()
    assert [c["client_id"] for c in page_two["items"]] == [keyed.client.client_id]
    assert page_two["next_cursor"] is None

    missing = await client.get(f"{ADMIN}/tenants/no-such-{uuid.uuid4().hex[:6]}/clients", headers=headers)
    assert missing.status_code == 404
    listed = _reads(audit_log, "api_client.list")
    assert listed[0].tenant_id == TenantId(tenant.id)
    assert set(listed[0].resource_ids) == {basic.client.id, keyed.client.id}


async def test_admin_lists_and_reads_people_with_roles_and_assignments(
    *,
    client: Client,
    mint: Mint,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    other_tenant: Tenant,
    audit_log: list[AuditEvent],
) -> None:
    coder = await make_user(control_sessions, ["coder", "biller"])
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    gone = await make_user(control_sessions, ["biller"], active=False)
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [coder.email])
        await assign_staff(session, TenantId(other_tenant.id), [coder.email])
    headers = await _admin(mint)

    found = await client.get(f"{ADMIN}/people", params={"email": coder.email.upper()}, headers=headers)
    assert found.status_code == 200, found.text
    (person,) = found.json()["items"]
    assert person["id"] == str(coder.id)
    assert person["email"] == coder.email
    assert sorted(person["roles"]) == ["biller", "coder"]
    assert person["active"] is True
    assert person["home_tenant_id"] is None
    assert {(a["tenant_id"], a["tenant_slug"]) for a in person["assignments"]} == {
        (str(tenant.id), tenant.slug),
        (str(other_tenant.id), other_tenant.slug),
    }

    read = await client.get(f"{ADMIN}/people/{owner.id}", headers=headers)
    assert read.status_code == 200
    assert read.json()["roles"] == ["practice_owner"]
    assert read.json()["home_tenant_slug"] == tenant.slug
    assert read.json()["assignments"] == []
    inactive = await client.get(f"{ADMIN}/people/{gone.id}", headers=headers)
    assert inactive.json()["active"] is False
    assert (await client.get(f"{ADMIN}/people/{uuid.uuid4()}", headers=headers)).status_code == 404

    owners = await _all_pages(client, f"{ADMIN}/people", headers, role="practice_owner", limit=2)
    assert str(owner.id) in {p["id"] for p in owners}
    assert all("practice_owner" in p["roles"] for p in owners)
    unknown = await client.get(f"{ADMIN}/people", params={"email": "nobody@test.invalid"}, headers=headers)
    assert unknown.json() == {"items": [], "next_cursor": None}
    bad_role = await client.get(f"{ADMIN}/people", params={"role": "emperor"}, headers=headers)
    assert bad_role.status_code in (400, 422)

    lists = _reads(audit_log, "app_user.list")
    assert lists[0].resource_ids == (coder.id,)
    assert [e.resource_ids for e in _reads(audit_log, "app_user.read")] == [(owner.id,), (gone.id,)]


async def test_admin_reads_need_an_admin_with_a_second_factor(
    client: Client, mint: Mint, tenant: Tenant, audit_log: list[AuditEvent]
) -> None:
    user = uuid.uuid4()
    routes = [
        f"{ADMIN}/tenants",
        f"{ADMIN}/tenants/{tenant.slug}",
        f"{ADMIN}/tenants/{tenant.slug}/clients",
        f"{ADMIN}/people",
        f"{ADMIN}/people/{user}",
    ]
    callers = {
        "admin without MFA": user_principal(Role.ADMIN),
        "coder with MFA": user_principal(Role.CODER, mfa=True),
        "auditor": user_principal(Role.AUDITOR, mfa=True),
        "practice owner": user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id, mfa=True),
    }
    for name, principal in callers.items():
        headers = {"Authorization": f"Bearer {await mint(principal)}"}
        for url in routes:
            denied_before = sum(e.event_type == "access.denied" for e in audit_log)
            response = await client.get(url, headers=headers)
            assert response.status_code == 403, f"{name}: GET {url} answered {response.status_code}"
            assert sum(e.event_type == "access.denied" for e in audit_log) == denied_before + 1
    assert not [
        e for e in audit_log if e.action is Action.READ and e.event_type.startswith(("tenant.", "app_user."))
    ]
