"""Admin API for people: roles, activity and staff assignments, over HTTP with real tokens."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.cli import main
from rcm.config import Settings, get_settings
from rcm.identity.oidc import mint_dev_id_token
from rcm.identity.principal import Role
from rcm.identity.server import JWT_BEARER
from rcm.identity.testing import user_principal
from rcm.kit.models import utcnow
from rcm.tenancy.models import Tenant
from tests.identity.conftest import Mint, audit_rows, idem, make_user

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


async def _admin(mint: Mint, user_id: uuid.UUID | None = None) -> dict[str, str]:
    principal = user_principal(Role.ADMIN, user_id=user_id, mfa=True)
    return {"Authorization": f"Bearer {await mint(principal)}"}


async def _roles_in_db(owner_engine: AsyncEngine, user_id: uuid.UUID) -> list[str]:
    async with owner_engine.connect() as conn:
        row = await conn.execute(text("SELECT roles FROM rcm.app_user WHERE id = :u"), {"u": user_id})
        return list(row.one()[0])


async def test_set_roles_is_audited_in_the_same_transaction(
    client: Client, mint: Mint, control_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    person = await make_user(control_sessions, ["coder"])
    response = await client.put(
        f"/api/v1/admin/people/{person.id}/roles",
        json={"roles": ["biller", "coder", "biller"]},
        headers=await _admin(mint),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["roles"] == ["biller", "coder"]
    assert body["id"] == str(person.id)
    assert await _roles_in_db(owner_engine, person.id) == ["biller", "coder"]
    async with owner_engine.connect() as conn:
        xmin = (
            await conn.execute(text("SELECT xmin::text FROM rcm.app_user WHERE id = :u"), {"u": person.id})
        ).scalar_one()
    event = (await audit_rows(owner_engine, "person.roles"))[-1]
    assert event["xmin"] == xmin
    assert event["resource_ids"] == [person.id]
    assert event["detail"]["previous"] == "coder"


async def test_invalid_roles_are_422_naming_the_field(
    client: Client, mint: Mint, control_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    person = await make_user(control_sessions, ["coder"])
    url = f"/api/v1/admin/people/{person.id}/roles"
    headers = await _admin(mint)
    for roles in (["practice_client"], ["practice_owner"], ["superuser"]):
        response = await client.put(url, json={"roles": roles}, headers=headers)
        assert response.status_code in (400, 422), roles
        assert any(e["pointer"].startswith("/roles") for e in response.json()["errors"]), response.json()
    assert await _roles_in_db(owner_engine, person.id) == ["coder"]
    unknown = await client.put(url, json={"roles": ["coder"], "admin": True}, headers=headers)
    assert unknown.status_code in (400, 422)


async def test_an_admin_cannot_lock_themselves_out(
    client: Client, mint: Mint, control_sessions: Sessions, owner_engine: AsyncEngine
) -> None:
    admin = await make_user(control_sessions, ["admin"])
    headers = await _admin(mint, admin.id)
    demote = await client.put(
        f"/api/v1/admin/people/{admin.id}/roles", json={"roles": ["coder"]}, headers=headers
    )
    assert demote.status_code == 409
    stop = await client.put(
        f"/api/v1/admin/people/{admin.id}/active", json={"active": False}, headers=headers
    )
    assert stop.status_code == 409
    assert await _roles_in_db(owner_engine, admin.id) == ["admin"]


async def test_only_admins_with_mfa_manage_people(
    client: Client, mint: Mint, control_sessions: Sessions
) -> None:
    person = await make_user(control_sessions, ["coder"])
    url = f"/api/v1/admin/people/{person.id}/roles"
    no_mfa = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=False))}"}
    supervisor = {"Authorization": f"Bearer {await mint(user_principal(Role.SUPERVISOR, mfa=True))}"}
    for headers in (no_mfa, supervisor):
        assert (await client.put(url, json={"roles": ["admin"]}, headers=headers)).status_code == 403
    missing = await client.put(
        f"/api/v1/admin/people/{uuid.uuid4()}/roles", json={"roles": ["coder"]}, headers=await _admin(mint)
    )
    assert missing.status_code == 404


async def test_assignment_gives_and_removal_ends_access_to_a_practice(
    *,
    client: Client,
    mint: Mint,
    tenant: Tenant,
    other_tenant: Tenant,
    control_sessions: Sessions,
    owner_engine: AsyncEngine,
) -> None:
    coder = await make_user(control_sessions, ["coder"])
    coder_headers = {"Authorization": f"Bearer {await mint(user_principal(Role.CODER, user_id=coder.id))}"}
    encounters = f"/api/v1/tenants/{tenant.slug}/encounters"
    assert (await client.get(encounters, headers=coder_headers)).status_code == 404

    admin = await _admin(mint)
    url = f"/api/v1/admin/people/{coder.id}/assignments"
    key = idem(admin)
    created = await client.post(url, json={"tenant": tenant.slug}, headers=key)
    assert created.status_code == 201, created.text
    assert created.json()["tenant_id"] == str(tenant.id)
    assert created.json()["tenant"] == tenant.slug
    # The answer shows the stored row: the assignment was written before the response was built.
    assert abs(datetime.fromisoformat(created.json()["created_at"]) - utcnow()) < timedelta(minutes=5)
    replay = await client.post(url, json={"tenant": tenant.slug}, headers=key)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == created.json()
    assert (await client.get(encounters, headers=coder_headers)).status_code == 200
    # The other practice stays out of reach.
    other = f"/api/v1/tenants/{other_tenant.slug}/encounters"
    assert (await client.get(other, headers=coder_headers)).status_code == 404

    events = await audit_rows(owner_engine, "staff_assignment.create", tenant_id=tenant.id)
    assert [e["resource_ids"] for e in events] == [[coder.id]]

    removed = await client.delete(f"{url}/{tenant.slug}", headers=admin)
    assert removed.status_code == 204
    assert (await client.get(encounters, headers=coder_headers)).status_code == 404
    assert (await client.delete(f"{url}/{tenant.slug}", headers=admin)).status_code == 404
    assert len(await audit_rows(owner_engine, "staff_assignment.delete", tenant_id=tenant.id)) == 1


async def test_assignment_needs_a_key_a_practice_and_an_assignable_person(
    client: Client, mint: Mint, tenant: Tenant, control_sessions: Sessions
) -> None:
    admin = await _admin(mint)
    coder = await make_user(control_sessions, ["coder"])
    url = f"/api/v1/admin/people/{coder.id}/assignments"
    no_key = await client.post(url, json={"tenant": tenant.slug}, headers=admin)
    assert no_key.status_code == 422
    assert no_key.json()["errors"][0]["pointer"] == "header:Idempotency-Key"
    nowhere = await client.post(url, json={"tenant": "no-such-practice"}, headers=idem(admin))
    assert nowhere.status_code == 422
    assert nowhere.json()["errors"][0]["pointer"] == "/tenant"
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    refused = await client.post(
        f"/api/v1/admin/people/{owner.id}/assignments", json={"tenant": tenant.slug}, headers=idem(admin)
    )
    assert refused.status_code == 409
    nobody = await client.post(
        f"/api/v1/admin/people/{uuid.uuid4()}/assignments", json={"tenant": tenant.slug}, headers=idem(admin)
    )
    assert nobody.status_code == 404


async def test_a_person_added_by_an_admin_logs_in_through_their_issuer(
    *,
    client: Client,
    mint: Mint,
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    email = f"new-biller-{uuid.uuid4().hex[:8]}@test.invalid"
    body = {"email": email, "display_name": "New Biller", "roles": ["biller"]}
    admin = await _admin(mint)
    created = await client.post("/api/v1/admin/people", json=body, headers=idem(admin))
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["roles"] == ["biller"]
    assert person["active"] is True
    # A retry (the response was lost) finds the same person and answers the same.
    again = await client.post("/api/v1/admin/people", json=body, headers=idem(admin))
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == person
    assert len(await audit_rows(owner_engine, "person.create")) >= 1
    # Someone else with the same email is a conflict, not an overwrite.
    other = await client.post("/api/v1/admin/people", json={**body, "roles": ["admin"]}, headers=idem(admin))
    assert other.status_code == 409
    assert other.json()["errors"][0]["pointer"] == "/email"

    # First login through the (only trusted) dev issuer: matched by email, subject linked.
    id_token = mint_dev_id_token(settings, email=email, mfa=False)
    login = await client.post("/oauth/token", data={"grant_type": JWT_BEARER, "assertion": id_token})
    assert login.status_code == 200, login.text
    async with owner_engine.connect() as conn:
        subject = (
            await conn.execute(text("SELECT subject FROM rcm.app_user WHERE email = :e"), {"e": email})
        ).scalar_one()
    assert subject == email  # the dev issuer's subject is the email


async def test_adding_a_person_checks_issuer_roles_home_and_key(
    client: Client, mint: Mint, tenant: Tenant
) -> None:
    admin = await _admin(mint)
    base = {"email": f"x-{uuid.uuid4().hex[:8]}@test.invalid", "display_name": "X"}
    cases = [
        ({**base, "roles": ["coder"], "issuer": "https://unknown.example"}, "/issuer"),
        ({**base, "roles": ["practice_owner"]}, "/roles"),
        ({**base, "roles": ["coder"], "home_tenant": "no-such-practice"}, "/home_tenant"),
        ({**base, "roles": ["coder"], "email": "not-an-email"}, "/email"),
    ]
    for body, pointer in cases:
        response = await client.post("/api/v1/admin/people", json=body, headers=idem(admin))
        assert response.status_code in (400, 422), body
        assert response.json()["errors"][0]["pointer"] == pointer, response.json()
    no_key = await client.post("/api/v1/admin/people", json={**base, "roles": ["coder"]}, headers=admin)
    assert no_key.status_code == 422
    owner = await client.post(
        "/api/v1/admin/people",
        json={**base, "roles": ["practice_owner"], "home_tenant": tenant.slug},
        headers=idem(admin),
    )
    assert owner.status_code == 201, owner.text
    assert owner.json()["home_tenant_id"] == str(tenant.id)


async def test_the_first_admin_is_added_from_the_command_line(
    admin_url: str, tmp_path: Path, owner_engine: AsyncEngine
) -> None:
    email = f"first-admin-{uuid.uuid4().hex[:8]}@test.invalid"
    env = {"RCM_DATABASE_URL": admin_url, "RCM_DATA_DIR": str(tmp_path), "RCM_ENV": "test"}
    get_settings.cache_clear()
    try:
        args = ["identity", "people", "add", email, "--name", "First Admin", "--role", "admin"]
        result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env)
        refused = await asyncio.to_thread(
            CliRunner().invoke, main, [*args[:3], "not-an-email", *args[4:]], env=env
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["created"] is True
    assert refused.exit_code == 2
    assert "Traceback" not in refused.output
    async with owner_engine.connect() as conn:
        roles = (
            await conn.execute(text("SELECT roles FROM rcm.app_user WHERE email = :e"), {"e": email})
        ).scalar_one()
    assert roles == ["admin"]
    event = (await audit_rows(owner_engine, "person.create"))[-1]
    assert event["actor_subject"].startswith("operator:")
