"""POST /oauth/token: client_credentials (secret and private_key_jwt) and jwt-bearer ID tokens."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.audit.events import AuditEvent, Outcome
from rcm.config import Settings
from rcm.identity.clients import revoke_client
from rcm.identity.keys import KeyRing
from rcm.identity.oidc import DEV_AUDIENCE, DEV_ISSUER, mint_dev_id_token
from rcm.identity.principal import PrincipalKind, Role
from rcm.identity.scopes import ENCOUNTERS_READ, ROLE_SCOPES
from rcm.identity.server import CLIENT_ASSERTION_TYPE, JWT_BEARER
from rcm.identity.tokens import token_endpoint_url, verify_access_token
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import AppUser, Tenant
from tests.identity.conftest import audit_rows, make_client, make_user

Client = AsyncTestClient[Litestar]


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def _verify(token: str, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> Any:
    keys = await KeyRing(settings).verification_keys(sessions)
    return verify_access_token(token, keys, settings)


async def test_client_secret_basic_issues_a_tenant_bound_token(
    *,
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    audit_log: list[AuditEvent],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    issued = await make_client(control_sessions, tenant)
    assert issued.secret is not None
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=_basic(issued.client.client_id, issued.secret),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert response.headers["cache-control"] == "no-store"
    principal = await _verify(body["access_token"], sessions, settings)
    assert principal.kind is PrincipalKind.CLIENT
    assert principal.home_tenant == TenantId(tenant.id)
    assert principal.client_id == issued.client.client_id
    assert principal.roles == frozenset({Role.PRACTICE_CLIENT})
    assert principal.scopes == frozenset(issued.client.scopes)
    assert [e.event_type for e in audit_log] == ["token.issue"]
    assert audit_log[0].detail["jti"] == principal.token_id
    assert audit_log[0].tenant_id == TenantId(tenant.id)


async def test_requested_scope_is_narrowed_and_limited_by_registration(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    issued = await make_client(control_sessions, tenant, scopes=[ENCOUNTERS_READ])
    assert issued.secret is not None
    headers = _basic(issued.client.client_id, issued.secret)
    ok = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "scope": ENCOUNTERS_READ}, headers=headers
    )
    assert ok.status_code == 200
    assert ok.json()["scope"] == ENCOUNTERS_READ
    too_much = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "scope": "patients:write"}, headers=headers
    )
    assert too_much.status_code == 400
    assert too_much.json()["error"] == "invalid_scope"


async def test_wrong_secret_is_invalid_client_401(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    audit_log: list[AuditEvent],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    issued = await make_client(control_sessions, tenant)
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=_basic(issued.client.client_id, "rcm_s_not-the-secret"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers
    assert "access_token" not in response.json()
    assert [(e.event_type, e.outcome) for e in audit_log] == [("token.denied", Outcome.SERIOUS_FAILURE)]
    assert audit_log[0].actor_hint == issued.client.client_id


async def test_unknown_client_and_missing_credentials_are_401(client: Client) -> None:
    unknown = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=_basic("rcm_c_nobody", "x")
    )
    assert unknown.status_code == 401
    anonymous = await client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"


async def test_revoked_client_cannot_get_tokens(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    issued = await make_client(control_sessions, tenant)
    assert issued.secret is not None
    async with platform_transaction(control_sessions) as session:
        await revoke_client(session, TenantId(tenant.id), issued.client.client_id)
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=_basic(issued.client.client_id, issued.secret),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_unsupported_grant_type(client: Client) -> None:
    response = await client.post("/oauth/token", data={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# --- private_key_jwt ------------------------------------------------------------------------------------


def _key() -> ECKey:
    return ECKey.generate_key("P-256", private=True, auto_kid=True)


def _jwks(key: ECKey) -> dict[str, Any]:
    return {"keys": [{**key.as_dict(private=False), "alg": "ES256", "use": "sig"}]}


def _assertion(key: ECKey, client_id: str, aud: str, *, exp_in: int = 120, jti: str | None = None) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + exp_in,
        "jti": jti or uuid.uuid4().hex,
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])


def _assertion_form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    }


async def test_private_key_jwt_good_assertion_and_single_use(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = _key()
    issued = await make_client(control_sessions, tenant, auth_method="private_key_jwt", jwks=_jwks(key))
    assert issued.secret is None
    assertion = _assertion(key, issued.client.client_id, token_endpoint_url(settings))
    response = await client.post("/oauth/token", data=_assertion_form(assertion))
    assert response.status_code == 200, response.text
    principal = await _verify(response.json()["access_token"], sessions, settings)
    assert principal.home_tenant == TenantId(tenant.id)
    replay = await client.post("/oauth/token", data=_assertion_form(assertion))
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize("defect", ["wrong_key", "expired", "wrong_aud", "too_long_lived"])
async def test_private_key_jwt_bad_assertions_are_refused(
    *,
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    defect: str,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = _key()
    issued = await make_client(control_sessions, tenant, auth_method="private_key_jwt", jwks=_jwks(key))
    cid, aud = issued.client.client_id, token_endpoint_url(settings)
    assertion = {
        "wrong_key": lambda: _assertion(_key(), cid, aud),
        "expired": lambda: _assertion(key, cid, aud, exp_in=-600),
        "wrong_aud": lambda: _assertion(key, cid, "https://elsewhere.example/oauth/token"),
        "too_long_lived": lambda: _assertion(key, cid, aud, exp_in=86_400),
    }[defect]()
    response = await client.post("/oauth/token", data=_assertion_form(assertion))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "access_token" not in response.json()


async def test_secret_client_cannot_use_an_assertion(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    issued = await make_client(control_sessions, tenant)
    assertion = _assertion(_key(), issued.client.client_id, token_endpoint_url(settings))
    response = await client.post("/oauth/token", data=_assertion_form(assertion))
    assert response.status_code == 401


# --- jwt-bearer (people) --------------------------------------------------------------------------------


async def test_dev_issuer_id_token_gives_roles_from_our_table(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    audit_log: list[AuditEvent],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["coder"])
    id_token = mint_dev_id_token(settings, email=user.email, mfa=False)
    response = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": id_token})
    assert response.status_code == 200, response.text
    principal = await _verify(response.json()["access_token"], sessions, settings)
    assert principal.kind is PrincipalKind.USER
    assert principal.user_id == user.id
    assert principal.roles == frozenset({Role.CODER})
    assert principal.scopes == ROLE_SCOPES[Role.CODER]
    assert principal.home_tenant is None
    assert principal.mfa is False
    assert [e.event_type for e in audit_log] == ["user.login"]
    assert audit_log[0].resource_ids == (user.id,)


async def test_mfa_claim_comes_from_amr(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["admin"])
    id_token = mint_dev_id_token(settings, email=user.email, mfa=True)
    response = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": id_token})
    assert response.status_code == 200
    principal = await _verify(response.json()["access_token"], sessions, settings)
    assert principal.mfa is True
    assert principal.roles == frozenset({Role.ADMIN})


async def test_practice_owner_token_carries_the_tenant(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    id_token = mint_dev_id_token(settings, email=user.email, mfa=False)
    response = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": id_token})
    principal = await _verify(response.json()["access_token"], sessions, settings)
    assert principal.home_tenant == TenantId(tenant.id)


async def test_untrusted_issuer_is_refused(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    audit_log: list[AuditEvent],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["coder"])
    key = _key()
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "ES256", "kid": key.kid},
        {
            "iss": "https://evil.example",
            "aud": DEV_AUDIENCE,
            "sub": user.email,
            "email": user.email,
            "email_verified": True,
            "iat": now,
            "exp": now + 300,
        },
        key,
    )
    response = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": forged})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert [e.event_type for e in audit_log] == ["token.denied"]


async def test_dev_issuer_name_with_a_foreign_key_is_refused(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["coder"])
    key = _key()
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "ES256", "kid": key.kid},
        {"iss": DEV_ISSUER, "aud": DEV_AUDIENCE, "sub": user.email, "iat": now, "exp": now + 300},
        key,
    )
    response = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": forged})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_unknown_or_inactive_people_are_refused(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    stranger = mint_dev_id_token(settings, email="nobody@test.invalid", mfa=False)
    response = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": stranger})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    gone = await make_user(control_sessions, ["biller"], active=False)
    token = mint_dev_id_token(settings, email=gone.email, mfa=False)
    response = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": token})
    assert response.status_code == 400


async def test_expired_id_token_is_refused(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["coder"])
    token = mint_dev_id_token(settings, email=user.email, mfa=False, ttl_seconds=-600)
    response = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": token})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_email_fallback_never_crosses_issuers(
    client: Client,
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    audit_log: list[AuditEvent],
) -> None:
    # An admin provisioned for the company's IdP; the dev issuer (also trusted) vouches for the same email.
    email = f"admin-{uuid.uuid4().hex[:8]}@test.invalid"
    async with platform_transaction(control_sessions) as session:
        session.add(
            AppUser(
                id=uuid.uuid4(),
                issuer="https://idp.example",
                subject="idp-subject-1",
                email=email,
                display_name="Company admin",
                roles=["admin"],
            )
        )
    forged = mint_dev_id_token(settings, email=email, mfa=True)
    response = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": forged})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()
    assert [e.event_type for e in audit_log] == ["token.denied"]


async def test_email_fallback_links_the_subject_of_the_same_issuer_once(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    audit_log: list[AuditEvent],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await make_user(control_sessions, ["coder"])
    async with platform_transaction(control_sessions) as session:
        # Provisioned before the first login: the issuer's subject is not known yet.
        await session.execute(
            update(AppUser).where(AppUser.id == user.id).values(subject="pending-first-login")
        )
    id_token = mint_dev_id_token(settings, email=user.email, mfa=False)  # sub = the email
    first = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": id_token})
    assert first.status_code == 200, first.text
    assert (await _verify(first.json()["access_token"], sessions, settings)).user_id == user.id
    async with platform_transaction(control_sessions) as session:
        linked = (await session.execute(select(AppUser.subject).where(AppUser.id == user.id))).scalar_one()
    assert linked == user.email
    assert [(e.event_type, e.detail["linked"]) for e in audit_log] == [("user.login", True)]
    again = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": id_token})
    assert again.status_code == 200
    assert audit_log[-1].detail["linked"] is False


async def test_assertion_replay_inside_the_leeway_window_is_refused(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    # exp is 10 s past: still accepted (30 s clock-skew leeway), so its jti must still be remembered, even
    # though the purge that runs before every insert has passed the row's exp.
    key = _key()
    issued = await make_client(control_sessions, tenant, auth_method="private_key_jwt", jwks=_jwks(key))
    assertion = _assertion(key, issued.client.client_id, token_endpoint_url(settings), exp_in=-10)
    first = await client.post("/oauth/token", data=_assertion_form(assertion))
    assert first.status_code == 200, first.text
    replay = await client.post("/oauth/token", data=_assertion_form(assertion))
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize("status", ["suspended", "offboarded"])
async def test_clients_of_an_inactive_tenant_get_no_token(
    *,
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    tenant: Tenant,
    status: str,
    audit_log: list[AuditEvent],
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    issued = await make_client(control_sessions, tenant)
    assert issued.secret is not None
    async with platform_transaction(control_sessions) as session:
        await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(status=status))
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=_basic(issued.client.client_id, issued.secret),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert [(e.event_type, e.tenant_id) for e in audit_log] == [("token.denied", TenantId(tenant.id))]


async def test_offboarding_revokes_the_tenants_clients(
    *,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tenant: Tenant,
    other_tenant: Tenant,
    owner_engine: AsyncEngine,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    from rcm.crypto.cli import offboard_tenant

    mine, theirs = (
        await make_client(control_sessions, tenant),
        await make_client(control_sessions, other_tenant),
    )
    await offboard_tenant(settings, tenant.slug)
    async with owner_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT client_id, status, xmin::text FROM rcm.api_client WHERE client_id = ANY(:ids)"),
            {"ids": [mine.client.client_id, theirs.client.client_id]},
        )
        by_id = {client_id: (status, xmin) for client_id, status, xmin in rows}
    assert by_id[mine.client.client_id][0] == "revoked"
    assert by_id[theirs.client.client_id][0] == "active"
    [offboard] = await audit_rows(owner_engine, "tenant.offboard", tenant_id=tenant.id)
    assert offboard["detail"]["clients_revoked"] == 1
    assert offboard["xmin"] == by_id[mine.client.client_id][1]  # one transaction
