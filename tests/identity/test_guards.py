"""Role, scope and MFA guards answer 403 problem documents and leave an audit event."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from rcm.audit.events import AuditEvent
from rcm.identity.principal import Role
from rcm.identity.scopes import ADMIN, AUDIT_READ
from rcm.identity.testing import client_principal, user_principal
from rcm.tenancy.models import Tenant
from tests.identity.conftest import Mint

Client = AsyncTestClient[Litestar]
ADMIN_ROUTE = "/api/v1/admin/break-glass"


async def _get(client: Client, token: str) -> tuple[int, dict[str, object], str]:
    response = await client.get(ADMIN_ROUTE, headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json(), response.headers.get("content-type", "")


async def test_admin_with_mfa_passes(client: Client, mint: Mint) -> None:
    status, _, _ = await _get(client, await mint(user_principal(Role.ADMIN, mfa=True)))
    assert status == 200


async def test_wrong_role_is_403(
    client: Client, mint: Mint, audit_log: list[AuditEvent], tenant: Tenant
) -> None:
    status, body, content_type = await _get(client, await mint(user_principal(Role.CODER, mfa=True)))
    assert status == 403
    assert content_type.startswith("application/problem+json")
    assert body["title"] == "Role required"
    assert [e.detail["reason"] for e in audit_log] == ["missing_role"]
    status, _, _ = await _get(client, await mint(client_principal(tenant.id)))
    assert status == 403


async def test_missing_scope_is_403(client: Client, mint: Mint, audit_log: list[AuditEvent]) -> None:
    token = await mint(user_principal(Role.ADMIN, mfa=True, scopes=frozenset({AUDIT_READ})))
    status, body, _ = await _get(client, token)
    assert status == 403
    assert body["title"] == "Scope required"
    assert [e.detail["reason"] for e in audit_log] == ["missing_scope"]


async def test_missing_mfa_is_403(client: Client, mint: Mint, audit_log: list[AuditEvent]) -> None:
    token = await mint(user_principal(Role.ADMIN, mfa=False, scopes=frozenset({ADMIN})))
    status, body, _ = await _get(client, token)
    assert status == 403
    assert body["title"] == "Multi-factor authentication required"
    assert [e.detail["reason"] for e in audit_log] == ["mfa_required"]
