"""A leaked ``rcm_app`` credential (or an SQL injection in a tenant request) cannot write the control plane.

Each forbidden write is tried over a real ``rcm_app`` connection and must fail with "permission denied";
the control role can make the same change. A key planted beside ours is never trusted, and a token's roles
never exceed the person's live roles.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.identity.tokens import AUDIENCE, issuer, principal_claims
from rcm.kit.db import platform_transaction, tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.models import Tenant
from tests.identity.conftest import Mint, make_client, make_user

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]

# (name, SQL, whether it runs in the test tenant's context). Parameters: :t tenant, :u user, :c client_id.
FORBIDDEN: list[tuple[str, str, bool]] = [
    (
        "plant a signing key",
        "INSERT INTO rcm.signing_key (kid, alg, kek_id, wrapped_private_key, public_jwk, state) "
        "VALUES ('forged', 'ES256', 'k', '\\x00', '{}'::jsonb, 'published')",
        False,
    ),
    ("re-activate or re-time a signing key", "UPDATE rcm.signing_key SET published_until = now()", False),
    ("delete the signing keys", "DELETE FROM rcm.signing_key", False),
    ("widen a person's roles", "UPDATE rcm.app_user SET roles = ARRAY['admin'] WHERE id = :u", False),
    ("re-activate a person", "UPDATE rcm.app_user SET active = true WHERE id = :u", False),
    ("re-link a person's login", "UPDATE rcm.app_user SET subject = 'attacker' WHERE id = :u", False),
    (
        "create a person",
        "INSERT INTO rcm.app_user (id, issuer, subject, email, display_name, roles) "
        "VALUES (gen_random_uuid(), 'x', 'x', 'x@x.invalid', 'x', ARRAY['admin'])",
        False,
    ),
    (
        "assign oneself to a practice",
        "INSERT INTO rcm.staff_assignment (tenant_id, user_id) VALUES (:t, :u)",
        True,
    ),
    ("remove an assignment", "DELETE FROM rcm.staff_assignment WHERE tenant_id = :t", True),
    (
        "issue an API client",
        "INSERT INTO rcm.api_client (tenant_id, id, client_id, name, auth_method, secret_hash, scopes) "
        "VALUES (:t, gen_random_uuid(), 'rcm_c_forged', 'x', 'client_secret_basic', '\\x00', "
        "ARRAY['patients:read'])",
        True,
    ),
    ("un-revoke an API client", "UPDATE rcm.api_client SET status = 'active' WHERE client_id = :c", True),
    ("swap a client's secret", "UPDATE rcm.api_client SET secret_hash = '\\x00' WHERE client_id = :c", True),
    ("delete an API client", "DELETE FROM rcm.api_client WHERE client_id = :c", True),
    ("truncate the people", "TRUNCATE rcm.app_user CASCADE", False),
    # Practices: a slug swap would file one practice's encounters under another covered entity.
    ("swap a practice's slug", "UPDATE rcm.tenant SET slug = slug || '-x' WHERE id = :t", True),
    ("lift a suspension", "UPDATE rcm.tenant SET status = 'active' WHERE id = :t", True),
    ("repoint a practice's billing NPI", "UPDATE rcm.tenant SET manifest = '{}'::jsonb WHERE id = :t", True),
    (
        "create a practice",
        "INSERT INTO rcm.tenant (id, slug, name, manifest) "
        "VALUES (gen_random_uuid(), 'forged-practice', 'x', '{}'::jsonb)",
        False,
    ),
    # Data keys: overwriting the wrapped keys would destroy a practice's PHI for good.
    ("overwrite a practice's data keys", "UPDATE rcm.data_key SET wrapped = NULL WHERE tenant_id = :t", True),
    ("delete a practice's data keys", "DELETE FROM rcm.data_key WHERE tenant_id = :t", True),
    # Audit: the transaction id orders sealing; partitions are the chainer's and the migrations' to make.
    (
        "write an audit event's transaction id",
        "INSERT INTO rcm.audit_event (tenant_id, occurred_at, id, event_type, action, outcome, actor_roles, "
        "resource_ids, patient_ids, request_id, trace_id, detail, xid) VALUES (:t, now(), gen_random_uuid(), "
        "'x', 'R', '0', '{}', '{}', '{}', 'r', 't', '{}'::jsonb, '5')",
        True,
    ),
    ("create audit partitions", "SELECT rcm.audit_ensure_partition('3000-01-01Z')", False),
]


@pytest.mark.parametrize(("what", "sql", "in_tenant"), FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
async def test_app_role_cannot_write_the_control_plane(
    *,
    what: str,
    sql: str,
    in_tenant: bool,
    sessions: Sessions,
    control_sessions: Sessions,
    tenant: Tenant,
) -> None:
    user = await make_user(control_sessions, ["coder"], active=False)
    client = (await make_client(control_sessions, tenant)).client
    params: dict[str, Any] = {"t": tenant.id, "u": user.id, "c": client.client_id}
    used = {name for name in ("t", "u", "c") if f":{name}" in sql}
    context = TenantContext.single(TenantId(tenant.id)) if in_tenant else None
    with pytest.raises(DBAPIError, match="permission denied") as raised:
        await _run_as(sessions, context, sql, {k: params[k] for k in used})
    assert raised.value.orig is not None, what


async def _run_as(
    sessions: Sessions, context: TenantContext | None, sql: str, params: dict[str, Any]
) -> None:
    """One statement in its own transaction, in ``context`` when given (the app's usual way in)."""
    if context is not None:
        async with tenant_transaction(sessions, context) as session:
            await session.execute(text(sql), params)
        return
    async with platform_transaction(sessions) as session:
        await session.execute(text(sql), params)


async def test_app_role_only_creates_first_keys_and_retires_emptied_ones(
    sessions: Sessions, control_sessions: Sessions, tenant: Tenant
) -> None:
    context = TenantContext.single(TenantId(tenant.id))
    insert = (
        "INSERT INTO rcm.data_key (tenant_id, purpose, version, state, kek_id, wrapped) "
        "VALUES (:t, :p, :v, :s, 'k', '\\x00')"
    )
    # A tombstone (or any key not active) would lock the practice out of its PHI.
    with pytest.raises(DBAPIError, match="permission denied"):
        await _run_as(sessions, context, insert, {"t": tenant.id, "p": "phi", "v": 1, "s": "destroyed"})
    await _run_as(sessions, context, insert, {"t": tenant.id, "p": "phi", "v": 1, "s": "active"})
    await _run_as(
        control_sessions, context, insert, {"t": tenant.id, "p": "phi", "v": 2, "s": "decrypt_only"}
    )
    set_state = "UPDATE rcm.data_key SET state = :new WHERE tenant_id = :t AND version = :v"
    for version, new in ((1, "destroyed"), (1, "decrypt_only"), (2, "active")):
        with pytest.raises(DBAPIError, match="permission denied"):
            await _run_as(sessions, context, set_state, {"t": tenant.id, "v": version, "new": new})
    # What re-encryption does once a rotated key encrypts nothing any more.
    await _run_as(sessions, context, set_state, {"t": tenant.id, "v": 2, "new": "retired"})
    async with tenant_transaction(sessions, context) as session:
        states = dict((await session.execute(text("SELECT version, state FROM rcm.data_key"))).all())
    assert states == {1: "active", 2: "retired"}


async def test_control_role_makes_the_changes_the_app_role_may_not(
    control_sessions: Sessions, tenant: Tenant
) -> None:
    user = await make_user(control_sessions, ["coder"])
    async with tenant_transaction(control_sessions, TenantContext.single(TenantId(tenant.id))) as session:
        await session.execute(
            text("UPDATE rcm.app_user SET roles = ARRAY['biller'] WHERE id = :u"), {"u": user.id}
        )
        await session.execute(
            text("INSERT INTO rcm.staff_assignment (tenant_id, user_id) VALUES (:t, :u)"),
            {"t": tenant.id, "u": user.id},
        )
        count = (await session.execute(text("SELECT count(*) FROM rcm.staff_assignment"))).scalar_one()
    assert count == 1


async def test_control_role_is_a_plain_login_that_owns_nothing(owner_engine: AsyncEngine) -> None:
    async with owner_engine.connect() as conn:
        role = (
            await conn.execute(
                text(
                    "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
                    "FROM pg_roles WHERE rolname = 'rcm_control'"
                )
            )
        ).one()
        owned = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                    "WHERE r.rolname = 'rcm_control'"
                )
            )
        ).scalar_one()
        # The app role must never inherit the control role's writes.
        app_in_control = (
            await conn.execute(text("SELECT pg_has_role('rcm_app', 'rcm_control', 'USAGE')"))
        ).scalar_one()
    assert tuple(role) == (True, False, False, False, False)
    assert owned == 0
    assert app_in_control is False


async def test_a_key_the_app_role_tries_to_plant_signs_nothing_we_accept(
    client: Client, sessions: Sessions, settings: Settings, mint: Mint
) -> None:
    """The attack of the issue: plant a public key, sign a practice token with its private half."""
    attacker = ECKey.generate_key("P-256", private=True, parameters={"kid": f"forged-{uuid.uuid4().hex[:8]}"})
    public = {**attacker.as_dict(private=False), "alg": "ES256", "use": "sig"}
    with pytest.raises(DBAPIError, match="permission denied"):
        async with platform_transaction(sessions) as session:
            await session.execute(
                text(
                    "INSERT INTO rcm.signing_key (kid, alg, kek_id, wrapped_private_key, public_jwk, state) "
                    "VALUES (:kid, 'ES256', 'k', '\\x00', CAST(:jwk AS jsonb), 'published')"
                ),
                {"kid": attacker.kid, "jwk": json.dumps(public)},
            )
    await mint(user_principal(Role.ADMIN, mfa=True))  # the deployment's own key exists
    jwks = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert attacker.kid not in {k["kid"] for k in jwks}
    admin = user_principal(Role.ADMIN, mfa=True)
    now = int(time.time())
    claims = {"iss": issuer(settings), "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 300}
    forged = jwt.encode(
        {"alg": "ES256", "kid": attacker.kid, "typ": "at+jwt"},
        {**claims, **principal_claims(admin)},
        attacker,
    )
    response = await client.get("/api/v1/admin/break-glass", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_a_token_never_carries_more_than_the_persons_live_roles(
    client: Client, control_sessions: Sessions, mint: Mint
) -> None:
    """A token claiming admin for a person whose row says coder (minted before a demotion) is a coder's."""
    user = await make_user(control_sessions, ["coder"])
    token = await mint(user_principal(Role.ADMIN, Role.CODER, user_id=user.id, mfa=True))
    response = await client.get("/api/v1/admin/break-glass", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
