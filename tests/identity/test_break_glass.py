"""Break-glass rules, each over HTTP with real tokens: MFA to open and to use, category and a real reason, a
short window with a deployment ceiling, the optional second approver, revocation, the daily limit, the audit
of every request, approval, use and revoke, the owner's view and the review report."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from pydantic import ValidationError
from sqlalchemy import insert, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.audit.events import AuditEvent
from rcm.config import Settings
from rcm.identity.access import resolve_tenant_access
from rcm.identity.models import BreakGlassGrant
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.kit.db import platform_transaction, tenant_transaction
from rcm.kit.tenant import PLATFORM_TENANT, TenantContext, TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import assign_staff
from tests.identity.conftest import Mint, audit_rows, idem, make_user
from tests.support import Api, encounter_payload

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
REASON = "Payer on the phone about a denied claim; the assigned biller is out"


@dataclass(frozen=True, slots=True)
class Person:
    """A person in app_user with a token carrying MFA and one without."""

    id: uuid.UUID
    email: str
    mfa: dict[str, str]
    plain: dict[str, str]


@pytest.fixture
def person(control_sessions: Sessions, mint: Mint) -> Any:
    async def _person(role: Role, **kwargs: Any) -> Person:
        user = await make_user(control_sessions, [str(role)])
        with_mfa = await mint(user_principal(role, user_id=user.id, mfa=True, **kwargs))
        without = await mint(user_principal(role, user_id=user.id, mfa=False, **kwargs))
        return Person(
            user.id,
            user.email,
            {"Authorization": f"Bearer {with_mfa}"},
            {"Authorization": f"Bearer {without}"},
        )

    return _person


def bg_url(tenant: Tenant, grant_id: str | None = None) -> str:
    base = f"/api/v1/tenants/{tenant.slug}/break-glass"
    return f"{base}/{grant_id}" if grant_id else base


async def open_grant(client: Client, tenant: Tenant, headers: dict[str, str], **body: Any) -> Any:
    payload = {"category": "payer_deadline", "reason": REASON, **body}
    return await client.post(bg_url(tenant), json=payload, headers=idem(headers))


async def read_encounter(client: Client, tenant: Tenant, encounter_id: str, headers: dict[str, str]) -> int:
    response = await client.get(f"/api/v1/tenants/{tenant.slug}/encounters/{encounter_id}", headers=headers)
    return response.status_code


async def _denials(owner_engine: AsyncEngine, tenant_id: uuid.UUID) -> int:
    return len(await audit_rows(owner_engine, "access.denied", tenant_id=tenant_id))


@pytest.fixture(scope="module")
def approval_app(settings: Settings) -> Litestar:
    """A deployment that requires a second approver (RCM_BREAK_GLASS_REQUIRE_APPROVAL=true)."""
    return create_app(settings.model_copy(update={"break_glass_require_approval": True}))


@pytest.fixture
async def approval_client(approval_app: Litestar) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=approval_app) as test_client:
        yield test_client


async def test_opening_needs_mfa(
    client: Client, person: Any, tenant: Tenant, audit_log: list[AuditEvent], owner_engine: AsyncEngine
) -> None:
    biller = await person(Role.BILLER)
    refused = await open_grant(client, tenant, biller.plain)
    assert refused.status_code == 403
    assert refused.json()["title"] == "Multi-factor authentication required"
    assert [(e.event_type, e.detail["reason"]) for e in audit_log] == [("access.denied", "mfa_required")]
    # The refusal is on the probed practice's own trail, where its owner and auditors look.
    assert audit_log[0].tenant_id == tenant.id
    assert await audit_rows(owner_engine, "break_glass.open", tenant_id=tenant.id) == []
    assert (await open_grant(client, tenant, biller.mfa)).status_code == 201


async def test_a_refusal_naming_a_slug_with_a_nul_byte_is_the_same_403(
    client: Client, person: Any, audit_log: list[AuditEvent]
) -> None:
    """The refused request's practice is looked up for its audit trail; a slug PostgreSQL cannot even hold
    (a NUL byte) is no practice, and the answer stays the 403 every refusal gets, never a 500."""
    biller = await person(Role.BILLER)
    refused = await client.post(
        "/api/v1/tenants/a%00b/break-glass",
        json={"category": "payer_deadline", "reason": "x" * 30},
        headers={**biller.plain, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert refused.status_code == 403, refused.text
    assert [(e.event_type, e.tenant_id) for e in audit_log] == [("access.denied", PLATFORM_TENANT)]


async def test_a_grant_needs_a_category_and_a_reason_of_real_length(
    client: Client, person: Any, tenant: Tenant
) -> None:
    coder = await person(Role.CODER)
    cases: dict[str, list[dict[str, Any]]] = {
        "/reason": [
            {"reason": "Payer on the phone"},  # 15 letters: not an explanation
            {"reason": "x" * 40},  # filler
            {"reason": "!!!! .... ---- ???? ____ ,,,, ;;;;"},
        ],
        "/category": [{"category": "curiosity"}, {"category": None}],
    }
    for pointer, bodies in cases.items():
        for body in bodies:
            response = await open_grant(client, tenant, coder.mfa, **body)
            assert response.status_code == 422, body
            assert pointer in {e["pointer"] for e in response.json()["errors"]}, response.json()
    ok = await open_grant(client, tenant, coder.mfa, category="system_outage", reason="  " + REASON + "  ")
    assert ok.status_code == 201, ok.text
    assert ok.json()["category"] == "system_outage"
    assert ok.json()["reason"] == REASON


async def test_window_defaults_short_and_is_capped_by_the_deployment(
    client: Client, person: Any, tenant: Tenant, settings: Settings
) -> None:
    assert (settings.break_glass_default_minutes, settings.break_glass_max_minutes) == (30, 60)
    biller = await person(Role.BILLER)
    too_long = await open_grant(client, tenant, biller.mfa, minutes=61)
    assert too_long.status_code == 422
    assert [e["pointer"] for e in too_long.json()["errors"]] == ["/minutes"]
    default = (await open_grant(client, tenant, biller.mfa)).json()
    assert default["status"] == "active"
    assert default["minutes"] == 30
    window = datetime.fromisoformat(default["expires_at"]) - datetime.fromisoformat(default["starts_at"])
    assert window == timedelta(minutes=30)


def test_window_settings_are_validated_at_start() -> None:
    with pytest.raises(ValidationError, match="RCM_BREAK_GLASS_DEFAULT_MINUTES"):
        Settings(break_glass_default_minutes=90, break_glass_max_minutes=60)
    with pytest.raises(ValidationError, match="break_glass_max_minutes"):
        Settings(break_glass_max_minutes=241)


async def test_assigned_staff_do_not_break_the_glass(
    client: Client, person: Any, tenant: Tenant, control_sessions: Sessions
) -> None:
    coder = await person(Role.CODER)
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [coder.email])
    assert (await open_grant(client, tenant, coder.mfa)).status_code == 409


async def test_a_grant_serves_only_its_holder_with_mfa_in_its_tenant(
    *,
    client: Client,
    person: Any,
    practice_api: Api,
    other_practice_api: Api,
    tenant: Tenant,
    other_tenant: Tenant,
    owner_engine: AsyncEngine,
) -> None:
    mine = (await practice_api.post("/encounters", encounter_payload())).json()["id"]
    theirs = (await other_practice_api.post("/encounters", encounter_payload())).json()["id"]
    holder, colleague = await person(Role.BILLER), await person(Role.BILLER)
    grant = (await open_grant(client, tenant, holder.mfa)).json()

    assert await read_encounter(client, tenant, mine, holder.mfa) == 200
    [use] = await audit_rows(owner_engine, "break_glass.use", tenant_id=tenant.id)
    assert use["resource_ids"] == [uuid.UUID(grant["id"])]
    assert use["actor_subject"] == str(holder.id)

    before = await _denials(owner_engine, tenant.id)
    # The same person without a second factor, and another person with one, get nothing from the grant.
    assert await read_encounter(client, tenant, mine, holder.plain) == 404
    assert await read_encounter(client, tenant, mine, colleague.mfa) == 404
    assert await _denials(owner_engine, tenant.id) == before + 2
    # A grant for tenant A gives nothing in tenant B; the denial is on B's trail, where the probe went.
    before_b = await _denials(owner_engine, other_tenant.id)
    assert await read_encounter(client, other_tenant, theirs, holder.mfa) == 404
    assert await _denials(owner_engine, other_tenant.id) == before_b + 1
    assert len(await audit_rows(owner_engine, "break_glass.use", tenant_id=tenant.id)) == 1


async def test_expired_grants_are_not_honoured(
    client: Client, person: Any, practice_api: Api, tenant: Tenant, control_sessions: Sessions
) -> None:
    encounter = (await practice_api.post("/encounters", encounter_payload())).json()["id"]
    holder = await person(Role.CODER)
    grant = (await open_grant(client, tenant, holder.mfa, minutes=5)).json()
    assert await read_encounter(client, tenant, encounter, holder.mfa) == 200
    # Time passes: the window is moved into the past (beneath the API, as the clock would).
    ended = datetime.now(UTC) - timedelta(minutes=1)
    async with tenant_transaction(control_sessions, TenantContext.single(TenantId(tenant.id))) as session:
        await session.execute(
            update(BreakGlassGrant)
            .where(BreakGlassGrant.id == uuid.UUID(grant["id"]))
            .values(starts_at=ended - timedelta(minutes=5), expires_at=ended)
        )
    assert await read_encounter(client, tenant, encounter, holder.mfa) == 404


async def test_revoke_by_holder_supervisor_or_admin_and_nobody_else(
    client: Client,
    person: Any,
    practice_api: Api,
    tenant: Tenant,
    owner_engine: AsyncEngine,
) -> None:
    encounter = (await practice_api.post("/encounters", encounter_payload())).json()["id"]
    holder, stranger = await person(Role.BILLER), await person(Role.CODER)
    supervisor, admin = await person(Role.SUPERVISOR), await person(Role.ADMIN)

    grant = (await open_grant(client, tenant, holder.mfa)).json()
    # Someone else's grant is not found for a coder; a supervisor needs MFA to end it.
    assert (await client.delete(bg_url(tenant, grant["id"]), headers=stranger.mfa)).status_code == 404
    assert (await client.delete(bg_url(tenant, grant["id"]), headers=supervisor.plain)).status_code == 403
    assert await read_encounter(client, tenant, encounter, holder.mfa) == 200

    revoked = await client.delete(bg_url(tenant, grant["id"]), headers=holder.plain)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["revoked_by"] == str(holder.id)
    assert await read_encounter(client, tenant, encounter, holder.mfa) == 404
    again = await client.delete(bg_url(tenant, grant["id"]), headers=holder.mfa)
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]

    for revoker in (supervisor, admin):
        other = (await open_grant(client, tenant, holder.mfa)).json()
        response = await client.delete(bg_url(tenant, other["id"]), headers=revoker.mfa)
        assert response.status_code == 200, response.text
        assert response.json()["revoked_by"] == str(revoker.id)
    events = await audit_rows(owner_engine, "break_glass.revoke", tenant_id=tenant.id)
    assert [e["actor_subject"] for e in events] == [str(holder.id), str(supervisor.id), str(admin.id)]
    assert all(e["detail"]["holder"] == str(holder.id) for e in events)


async def test_second_approver_before_access_starts(
    approval_client: Client,
    person: Any,
    practice_api: Api,
    tenant: Tenant,
    owner_engine: AsyncEngine,
) -> None:
    client = approval_client
    encounter = (await practice_api.post("/encounters", encounter_payload())).json()["id"]
    requester, approver = await person(Role.SUPERVISOR), await person(Role.SUPERVISOR)
    coder = await person(Role.CODER)

    pending = (await open_grant(client, tenant, requester.mfa, minutes=20)).json()
    assert (pending["status"], pending["starts_at"], pending["expires_at"]) == ("pending", None, None)
    assert await read_encounter(client, tenant, encounter, requester.mfa) == 404
    approvals = bg_url(tenant, pending["id"]) + "/approvals"
    # Not by the requester, not by a coder, not without MFA.
    own = await client.post(approvals, headers=idem(requester.mfa))
    assert own.status_code == 403
    assert "person who asked" in own.json()["detail"]
    assert (await client.post(approvals, headers=idem(coder.mfa))).status_code == 403
    assert (await client.post(approvals, headers=idem(approver.plain))).status_code == 403
    assert await read_encounter(client, tenant, encounter, requester.mfa) == 404

    waiting = await client.get(
        "/api/v1/break-glass/pending", params={"tenant": tenant.slug}, headers=approver.mfa
    )
    assert [(g["id"], g["reason"]) for g in waiting.json()] == [(pending["id"], REASON)]
    assert (await client.get("/api/v1/break-glass/pending", headers=approver.plain)).status_code == 403
    assert (await client.get("/api/v1/break-glass/pending", headers=coder.mfa)).status_code == 403

    approved = await client.post(approvals, headers=idem(approver.mfa))
    assert approved.status_code == 201, approved.text
    body = approved.json()
    assert (body["status"], body["approved_by"]) == ("active", str(approver.id))
    window = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["starts_at"])
    assert window == timedelta(minutes=20)
    assert await read_encounter(client, tenant, encounter, requester.mfa) == 200
    assert (await client.post(approvals, headers=idem(approver.mfa))).status_code == 409
    waiting = await client.get(
        "/api/v1/break-glass/pending", params={"tenant": tenant.slug}, headers=approver.mfa
    )
    assert waiting.json() == []

    [opened] = await audit_rows(owner_engine, "break_glass.open", tenant_id=tenant.id)
    [approval] = await audit_rows(owner_engine, "break_glass.approve", tenant_id=tenant.id)
    assert opened["detail"]["status"] == "pending"
    assert (approval["actor_subject"], approval["detail"]["holder"]) == (str(approver.id), str(requester.id))


async def test_unapproved_requests_lapse_and_revoked_ones_cannot_be_approved(
    approval_client: Client, person: Any, tenant: Tenant, owner_engine: AsyncEngine
) -> None:
    client = approval_client
    requester, approver = await person(Role.BILLER), await person(Role.ADMIN)
    old = (await open_grant(client, tenant, requester.mfa)).json()
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE rcm.break_glass_grant SET created_at = now() - interval '2 hours' WHERE id = :id"),
            {"id": uuid.UUID(old["id"])},
        )
    lapsed = await client.post(bg_url(tenant, old["id"]) + "/approvals", headers=idem(approver.mfa))
    assert lapsed.status_code == 409
    assert "lapsed" in lapsed.json()["detail"]
    cancelled = (await open_grant(client, tenant, requester.mfa)).json()
    assert (await client.delete(bg_url(tenant, cancelled["id"]), headers=requester.plain)).status_code == 200
    refused = await client.post(bg_url(tenant, cancelled["id"]) + "/approvals", headers=idem(approver.mfa))
    assert refused.status_code == 409


async def test_requests_per_person_per_day_are_limited(
    *,
    client: Client,
    person: Any,
    tenant: Tenant,
    other_tenant: Tenant,
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    assert settings.break_glass_max_grants_per_day == 3
    biller, colleague = await person(Role.BILLER), await person(Role.BILLER)
    first = (await open_grant(client, tenant, biller.mfa)).json()
    # A revoked grant still counts, and the count spans tenants.
    assert (await client.delete(bg_url(tenant, first["id"]), headers=biller.mfa)).status_code == 200
    assert (await open_grant(client, other_tenant, biller.mfa)).status_code == 201
    assert (await open_grant(client, tenant, biller.mfa)).status_code == 201
    before = await _denials(owner_engine, other_tenant.id)
    fourth = await open_grant(client, other_tenant, biller.mfa)
    assert fourth.status_code == 429
    assert await _denials(owner_engine, other_tenant.id) == before + 1
    assert (await open_grant(client, other_tenant, colleague.mfa)).status_code == 201


async def test_the_practice_owner_sees_grants_on_their_practice_without_the_reason(
    *,
    client: Client,
    person: Any,
    mint: Mint,
    tenant: Tenant,
    other_tenant: Tenant,
    owner_engine: AsyncEngine,
) -> None:
    holder = await person(Role.CODER)
    here = (await open_grant(client, tenant, holder.mfa)).json()
    there = (await open_grant(client, other_tenant, holder.mfa)).json()
    owner = {
        "Authorization": f"Bearer {await mint(user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id))}"
    }
    listed = await client.get(bg_url(tenant), headers=owner)
    assert listed.status_code == 200, listed.text
    [seen] = listed.json()
    assert (seen["id"], seen["user_email"], seen["category"]) == (here["id"], holder.email, "payer_deadline")
    assert "reason" not in seen
    assert there["id"] not in listed.text
    [read] = await audit_rows(owner_engine, "break_glass.list", tenant_id=tenant.id)
    assert read["resource_ids"] == [uuid.UUID(here["id"])]
    assert (await client.get(bg_url(other_tenant), headers=owner)).status_code == 404
    # Staff do not use the owner's view.
    assert (await client.get(bg_url(tenant), headers=holder.mfa)).status_code == 403


async def test_review_report_for_admins_and_auditors_is_filterable(
    *,
    client: Client,
    person: Any,
    mint: Mint,
    tenant: Tenant,
    other_tenant: Tenant,
    owner_engine: AsyncEngine,
) -> None:
    coder, biller = await person(Role.CODER), await person(Role.BILLER)
    start = datetime.now(UTC)
    a = (await open_grant(client, tenant, coder.mfa)).json()
    b = (await open_grant(client, other_tenant, coder.mfa)).json()
    c = (await open_grant(client, tenant, biller.mfa, category="legal_request")).json()
    await client.delete(bg_url(tenant, c["id"]), headers=biller.mfa)
    admin = (await person(Role.ADMIN)).mfa

    async def ids(url: str, headers: dict[str, str], **params: str) -> list[str]:
        response = await client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [g["id"] for g in response.json()]

    report = "/api/v1/admin/break-glass"
    since = start.isoformat()
    assert await ids(report, admin, since=since, user_id=str(coder.id)) == [b["id"], a["id"]]
    assert await ids(report, admin, since=since, email=coder.email.upper(), tenant=tenant.slug) == [a["id"]]
    assert await ids(report, admin, since=since, tenant=tenant.slug) == [c["id"], a["id"]]
    assert await ids(report, admin, since=since, tenant=tenant.slug, status="revoked") == [c["id"]]
    assert await ids(report, admin, since=since, tenant=tenant.slug, status="active") == [a["id"]]
    assert await ids(report, admin, tenant=tenant.slug, until=start.isoformat()) == []
    full = (await client.get(report, params={"tenant": tenant.slug}, headers=admin)).json()
    assert {g["reason"] for g in full} == {REASON}
    assert {g["user_email"] for g in full} == {coder.email, biller.email}
    naive = await client.get(report, params={"since": "2026-01-01T00:00:00"}, headers=admin)
    assert naive.status_code == 422
    assert [e["pointer"] for e in naive.json()["errors"]] == ["query:since"]

    auditor_token = await mint(user_principal(Role.AUDITOR, auditor_tenants=(tenant.id,)))
    auditor = {"Authorization": f"Bearer {auditor_token}"}
    audit_report = "/api/v1/audit/break-glass"
    assert await ids(audit_report, auditor, since=since) == [c["id"], a["id"]]
    outside = await client.get(audit_report, params={"tenant": other_tenant.slug}, headers=auditor)
    assert outside.status_code == 404
    everywhere = {"Authorization": f"Bearer {await mint(user_principal(Role.AUDITOR))}"}
    assert await ids(audit_report, everywhere, since=since, user_id=str(coder.id)) == [b["id"], a["id"]]
    # Admins need MFA for the review, and nobody else reads it.
    no_mfa = (await person(Role.ADMIN)).plain
    assert (await client.get(report, headers=no_mfa)).status_code == 403
    assert (await client.get(audit_report, headers=coder.mfa)).status_code == 403
    reviews = await audit_rows(owner_engine, "break_glass.report")
    assert any(uuid.UUID(a["id"]) in r["resource_ids"] for r in reviews)


async def test_only_the_control_role_writes_grants_and_never_who_asked_or_self_approval(
    client: Client,
    person: Any,
    tenant: Tenant,
    sessions: Sessions,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    holder = await person(Role.BILLER)
    grant_id = uuid.UUID((await open_grant(client, tenant, holder.mfa)).json()["id"])
    context = TenantContext.single(TenantId(tenant.id))
    # A leaked app credential can neither start, stretch nor plant a grant.
    for values in ({"revoked_at": None}, {"expires_at": datetime.now(UTC) + timedelta(hours=1)}):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with tenant_transaction(sessions, context) as session:
                await session.execute(
                    update(BreakGlassGrant).where(BreakGlassGrant.id == grant_id).values(**values)
                )
    with pytest.raises(DBAPIError, match="permission denied"):
        async with tenant_transaction(sessions, context) as session:
            await session.execute(
                insert(BreakGlassGrant).values(
                    id=uuid.uuid4(), tenant_id=tenant.id, user_id=holder.id, reason="planted by the app role"
                )
            )
    # Even the control role changes only a grant's life cycle, and the database holds the rules.
    for values in ({"reason": "rewritten after the fact"}, {"user_id": uuid.uuid4()}, {"minutes": 240}):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with tenant_transaction(control_sessions, context) as session:
                await session.execute(
                    update(BreakGlassGrant).where(BreakGlassGrant.id == grant_id).values(**values)
                )
    with pytest.raises(DBAPIError, match="ck_break_glass_grant_approval"):
        async with tenant_transaction(control_sessions, context) as session:
            await session.execute(
                update(BreakGlassGrant)
                .where(BreakGlassGrant.id == grant_id)
                .values(approved_by=holder.id, approved_at=datetime.now(UTC))
            )
    with pytest.raises(DBAPIError, match="ck_break_glass_grant_window"):
        async with tenant_transaction(control_sessions, context) as session:
            await session.execute(
                update(BreakGlassGrant)
                .where(BreakGlassGrant.id == grant_id)
                .values(expires_at=datetime.now(UTC) + timedelta(hours=5))
            )


async def test_admins_reach_a_tenant_only_through_a_grant_and_only_with_mfa(
    *,
    client: Client,
    mint: Mint,
    sessions: Sessions,
    control_sessions: Sessions,
    tenant: Tenant,
    audit_log: list[AuditEvent],
) -> None:
    # Decided by the access rule itself: an admin token carries only the admin scope, so no PHI route would
    # let it through its scope guard whatever the grant says.
    user = await make_user(control_sessions, ["admin"])
    with_mfa = user_principal(Role.ADMIN, user_id=user.id, mfa=True)
    without = user_principal(Role.ADMIN, user_id=user.id, mfa=False)
    async with platform_transaction(sessions) as session:
        assert not (await resolve_tenant_access(session, with_mfa, tenant)).allowed
    refused = await open_grant(client, tenant, {"Authorization": f"Bearer {await mint(without)}"})
    assert refused.status_code == 403
    headers = {"Authorization": f"Bearer {await mint(with_mfa)}"}
    grant = await open_grant(client, tenant, headers, category="legal_request", minutes=10)
    assert grant.status_code == 201, grant.text
    async with platform_transaction(sessions) as session:
        used = await resolve_tenant_access(session, with_mfa, tenant)
        plain = await resolve_tenant_access(session, without, tenant)
    assert (used.allowed, str(used.break_glass_grant_id)) == (True, grant.json()["id"])
    assert (plain.allowed, plain.reason) == (False, "break_glass_requires_mfa")
    opened = [e for e in audit_log if e.event_type == "break_glass.open"]
    assert [(e.tenant_id, e.detail["category"], e.detail["minutes"]) for e in opened] == [
        (tenant.id, "legal_request", 10)
    ]
