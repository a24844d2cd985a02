"""Access rules that mutation testing (``make mutate``) found unguarded: each test fails if its rule breaks.

Over HTTP with real tokens where a route decides, through ``resolve_tenant_access`` where the rule is the
access decision itself.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest
from joserfc import jwt
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.access import AccessBasis, resolve_tenant_access
from rcm.identity.keys import ALG, KeyRing
from rcm.identity.principal import Principal, Role
from rcm.identity.testing import client_principal, user_principal
from rcm.identity.tokens import AUDIENCE, issuer, principal_claims, principal_from_claims
from rcm.kit.db import platform_transaction
from rcm.kit.models import utcnow
from rcm.kit.tenant import PLATFORM_TENANT, TenantId
from rcm.tenancy.cache import tenants_changed
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import assign_staff, tenant_by_slug
from tests.identity.conftest import Mint, audit_rows, idem, make_user
from tests.support import Api, encounter_payload

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
REASON = "Payer on the phone about a denied claim; the assigned biller is out"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def encounter_url(tenant: Tenant, encounter_id: str) -> str:
    return f"/api/v1/tenants/{tenant.slug}/encounters/{encounter_id}"


async def set_status(control: Sessions, tenant: Tenant, status: str) -> None:
    """As an operator command would (only the control role writes practices), and told to this process."""
    async with platform_transaction(control) as session:
        await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(status=status))
    tenants_changed()


async def test_only_the_callers_own_assignment_opens_a_tenant(
    *, client: Client, mint: Mint, practice_api: Api, tenant: Tenant, control_sessions: Sessions
) -> None:
    """Someone else's assignment to the practice gives a colleague nothing."""
    encounter = (await practice_api.post("/encounters", encounter_payload())).json()["id"]
    assigned, colleague = (
        await make_user(control_sessions, ["coder"]),
        await make_user(control_sessions, ["coder"]),
    )
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [assigned.email])
    mine = await mint(user_principal(Role.CODER, user_id=assigned.id))
    theirs = await mint(user_principal(Role.CODER, user_id=colleague.id, mfa=True))
    assert (await client.get(encounter_url(tenant, encounter), headers=bearer(mine))).status_code == 200
    assert (await client.get(encounter_url(tenant, encounter), headers=bearer(theirs))).status_code == 404


@pytest.mark.parametrize("status", ["suspended", "offboarded"])
async def test_a_practice_that_is_not_active_is_reachable_by_nobody(
    *,
    status: str,
    client: Client,
    mint: Mint,
    practice_api: Api,
    tenant: Tenant,
    control_sessions: Sessions,
    sessions: Sessions,
    owner_engine: AsyncEngine,
) -> None:
    encounter = (await practice_api.post("/encounters", encounter_payload())).json()["id"]
    coder = await make_user(control_sessions, ["coder"])
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [coder.email])
    staff = await mint(user_principal(Role.CODER, user_id=coder.id, mfa=True))
    biller = await make_user(control_sessions, ["biller"])
    holder = bearer(await mint(user_principal(Role.BILLER, user_id=biller.id, mfa=True)))
    grant = await client.post(
        f"/api/v1/tenants/{tenant.slug}/break-glass",
        json={"category": "payer_deadline", "reason": REASON},
        headers=idem(holder),
    )
    assert grant.status_code == 201, grant.text

    await set_status(control_sessions, tenant, status)
    before = len(await audit_rows(owner_engine, "access.denied", tenant_id=tenant.id))
    # The practice's own system, its assigned staff and a grant holder: all refused.
    assert (await practice_api.get(f"/encounters/{encounter}")).status_code == 404
    for headers in (bearer(staff), holder):
        assert (await client.get(encounter_url(tenant, encounter), headers=headers)).status_code == 404
    denied = await audit_rows(owner_engine, "access.denied", tenant_id=tenant.id)
    assert len(denied) == before + 3
    # No new emergency access into it either.
    again = await client.post(
        f"/api/v1/tenants/{tenant.slug}/break-glass",
        json={"category": "payer_deadline", "reason": REASON},
        headers=idem(holder),
    )
    assert again.status_code == 404
    # That refusal too is on the probed practice's trail.
    assert len(await audit_rows(owner_engine, "access.denied", tenant_id=tenant.id)) == before + 4
    async with platform_transaction(sessions) as session:
        stored = await tenant_by_slug(session, tenant.slug)
        assert stored is not None
        for caller in (client_principal(tenant.id), user_principal(Role.AUDITOR)):  # company-wide auditor
            decision = await resolve_tenant_access(session, caller, stored)
            assert (decision.allowed, decision.reason) == (False, "tenant_not_active")


async def _forged_token(
    settings: Settings, sessions: Sessions, control: Sessions, claims: dict[str, Any]
) -> str:
    """A token signed with the deployment's real key whose claims no issuer of ours would write."""
    key = await KeyRing(settings, control=control).signing_key(sessions)
    now = int(utcnow().timestamp())
    body = {"iss": issuer(settings), "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 300, **claims}
    return jwt.encode({"alg": ALG, "kid": key.kid, "typ": "at+jwt"}, body, key, algorithms=[ALG])


@pytest.mark.parametrize("role", [Role.CODER, Role.SUPERVISOR, Role.ADMIN])
async def test_an_all_tenants_claim_makes_no_auditor(
    *,
    role: Role,
    client: Client,
    mint: Mint,
    practice_api: Api,
    tenant: Tenant,
    settings: Settings,
    sessions: Sessions,
    control_sessions: Sessions,
) -> None:
    encounter = (await practice_api.post("/encounters", encounter_payload())).json()["id"]
    user = await make_user(control_sessions, [str(role)])
    honest = user_principal(role, user_id=user.id, mfa=True)
    await mint(honest)  # the signing key exists
    claims = {**principal_claims(honest), "all_tenants": True, "auditor_tenants": []}
    principal = principal_from_claims(claims)
    assert principal.all_tenants
    async with platform_transaction(sessions) as session:
        decision = await resolve_tenant_access(session, principal, tenant)
    assert not decision.allowed
    token = await _forged_token(settings, sessions, control_sessions, claims)
    # An admin token lacks the PHI scope, so its scope guard refuses first; staff reach the access rule.
    refused = 403 if role is Role.ADMIN else 404
    assert (await client.get(encounter_url(tenant, encounter), headers=bearer(token))).status_code == refused


async def test_an_auditor_reads_only_the_practices_in_scope(
    sessions: Sessions, tenant: Tenant, other_tenant: Tenant
) -> None:
    """The scope is the token's list, or everything only with the all-tenants flag."""
    scoped = user_principal(Role.AUDITOR, auditor_tenants=(tenant.id,))
    narrowed = dataclasses.replace(scoped, all_tenants=False, auditor_tenants=())
    async with platform_transaction(sessions) as session:
        ok = await resolve_tenant_access(session, scoped, tenant)
        assert (ok.allowed, ok.basis) == (True, AccessBasis.AUDITOR_SCOPE)
        assert not (await resolve_tenant_access(session, scoped, other_tenant)).allowed
        assert not (await resolve_tenant_access(session, narrowed, tenant)).allowed


async def test_denials_are_audited_under_the_probed_tenant_with_their_actor(
    *,
    practice_api: Api,
    other_practice_api: Api,
    other_tenant: Tenant,
    tenant: Tenant,
    owner_engine: AsyncEngine,
) -> None:
    """A probe of a neighbour's practice is on the neighbour's trail; a made-up slug on the platform's."""
    theirs = (await other_practice_api.post("/encounters", encounter_payload())).json()["id"]
    before = await audit_rows(owner_engine, "access.denied", tenant_id=other_tenant.id)
    assert (await practice_api.get(f"/encounters/{theirs}", slug=other_tenant.slug)).status_code == 404
    after = await audit_rows(owner_engine, "access.denied", tenant_id=other_tenant.id)
    [probe] = after[len(before) :]
    assert probe["actor_kind"] == "client"
    assert probe["actor_subject"] is not None
    assert probe["detail"]["status"] == 404
    assert await audit_rows(owner_engine, "access.denied", tenant_id=tenant.id) == []

    slug = f"no-such-{uuid.uuid4().hex[:8]}"
    platform_before = len(await audit_rows(owner_engine, "access.denied", tenant_id=PLATFORM_TENANT))
    assert (await practice_api.get("/encounters", slug=slug)).status_code == 404
    assert (
        len(await audit_rows(owner_engine, "access.denied", tenant_id=PLATFORM_TENANT)) == platform_before + 1
    )

    # Not found inside one's own practice is on one's own trail.
    missing = uuid.uuid4()
    assert (await practice_api.get(f"/encounters/{missing}")).status_code == 404
    [own] = await audit_rows(owner_engine, "access.denied", tenant_id=tenant.id)
    assert own["actor_subject"] == probe["actor_subject"]


async def test_tenant_events_keep_their_actor(
    *,
    client: Client,
    mint: Mint,
    practice_api: Api,
    tenant: Tenant,
    owner_engine: AsyncEngine,
    control_sessions: Sessions,
) -> None:
    created = (await practice_api.post("/encounters", encounter_payload())).json()["id"]
    coder = await make_user(control_sessions, ["coder"])
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [coder.email])
    token = await mint(user_principal(Role.CODER, user_id=coder.id))
    assert (await client.get(encounter_url(tenant, created), headers=bearer(token))).status_code == 200
    [create] = await audit_rows(owner_engine, "encounter.create", tenant_id=tenant.id)
    reads = await audit_rows(owner_engine, "encounter.read", tenant_id=tenant.id)
    assert create["actor_kind"] == "client"
    assert create["actor_subject"] not in (None, "")
    assert create["detail"]["access"] == "home_tenant"
    assert [(r["actor_kind"], r["actor_subject"], r["detail"]["access"]) for r in reads] == [
        ("user", str(coder.id), "assignment")
    ]


async def test_a_grant_is_personal_and_ends_when_revoked(
    *,
    client: Client,
    mint: Mint,
    practice_api: Api,
    tenant: Tenant,
    control_sessions: Sessions,
    sessions: Sessions,
) -> None:
    encounter = (await practice_api.post("/encounters", encounter_payload())).json()["id"]
    holder_row, other_row = (
        await make_user(control_sessions, ["biller"]),
        await make_user(control_sessions, ["biller"]),
    )
    holder: Principal = user_principal(Role.BILLER, user_id=holder_row.id, mfa=True)
    other: Principal = user_principal(Role.BILLER, user_id=other_row.id, mfa=True)
    holder_headers, other_headers = bearer(await mint(holder)), bearer(await mint(other))
    grant = await client.post(
        f"/api/v1/tenants/{tenant.slug}/break-glass",
        json={"category": "payer_deadline", "reason": REASON},
        headers=idem(holder_headers),
    )
    assert grant.status_code == 201, grant.text
    assert (await client.get(encounter_url(tenant, encounter), headers=holder_headers)).status_code == 200
    assert (await client.get(encounter_url(tenant, encounter), headers=other_headers)).status_code == 404
    async with platform_transaction(sessions) as session:
        assert not (await resolve_tenant_access(session, other, tenant)).allowed

    url = f"/api/v1/tenants/{tenant.slug}/break-glass/{grant.json()['id']}"
    # Another biller cannot end it (not found to them), the holder can.
    assert (await client.delete(url, headers=other_headers)).status_code == 404
    assert (await client.get(encounter_url(tenant, encounter), headers=holder_headers)).status_code == 200
    assert (await client.delete(url, headers=holder_headers)).status_code == 200
    assert (await client.get(encounter_url(tenant, encounter), headers=holder_headers)).status_code == 404
    async with platform_transaction(sessions) as session:
        decision = await resolve_tenant_access(session, holder, tenant)
    assert (decision.allowed, decision.break_glass_grant_id) == (False, None)


async def test_each_refusal_names_the_rule_that_refused(
    *, sessions: Sessions, control_sessions: Sessions, tenant: Tenant, other_tenant: Tenant
) -> None:
    """The reason goes to the audit trail: a refusal must come from the rule meant to refuse."""
    # A practice role binds a person to their practice even if they also hold a staff role and an assignment.
    both = await make_user(control_sessions, ["practice_owner", "coder"], home_tenant=tenant)
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(other_tenant.id), [both.email])
    owner_and_coder = user_principal(Role.PRACTICE_OWNER, Role.CODER, user_id=both.id, home_tenant=tenant.id)
    # A person's token without a user id (no issuer of ours writes one) is nobody, even as an auditor.
    nobody = dataclasses.replace(user_principal(Role.AUDITOR), user_id=None)
    coder = user_principal(Role.CODER, mfa=True)
    cases = [
        (client_principal(tenant.id), other_tenant, "not_home_tenant"),
        (owner_and_coder, other_tenant, "not_home_tenant"),
        (nobody, tenant, "no_user"),
        (coder, tenant, "no_assignment"),
    ]
    async with platform_transaction(sessions) as session:
        for principal, where, reason in cases:
            decision = await resolve_tenant_access(session, principal, where)
            assert (decision.allowed, decision.reason, decision.context) == (False, reason, None), reason
        home = await resolve_tenant_access(session, owner_and_coder, tenant)
    assert (home.allowed, home.basis) == (True, AccessBasis.HOME_TENANT)
