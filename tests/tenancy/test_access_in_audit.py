"""Every PHI event says on what basis the caller acted; break-glass access names its grant."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.tenancy.models import Tenant
from tests.identity.conftest import make_user
from tests.support import Api, encounter_payload


async def test_break_glass_reads_are_marked_with_the_grant(
    *,
    practice_api: Api,
    tenant: Tenant,
    client: AsyncTestClient[Litestar],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    control_sessions: async_sessionmaker[AsyncSession],
) -> None:
    created = (await practice_api.post("/encounters", encounter_payload())).json()
    user = await make_user(control_sessions, ["biller"])
    token = await mint_access_token(
        user_principal(Role.BILLER, user_id=user.id, mfa=True), sessions=sessions, settings=settings
    )
    biller = Api(client, token, tenant.slug)
    assert (await biller.get(f"/encounters/{created['id']}")).status_code == 404  # not assigned
    grant = await biller.post(
        "/break-glass",
        {"category": "payer_deadline", "reason": "Payer on the phone about a denied claim", "minutes": 30},
    )
    assert grant.status_code == 201, grant.text
    assert (await biller.get(f"/encounters/{created['id']}")).status_code == 200

    async with owner_engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT event_type, detail FROM rcm.audit_event"
                    " WHERE tenant_id = :t AND :e = ANY(resource_ids) ORDER BY occurred_at, xid, id"
                ),
                {"t": tenant.id, "e": uuid.UUID(created["id"])},
            )
        ).all()
    by_type = dict(rows)
    assert by_type["encounter.create"]["access"] == "home_tenant"
    assert by_type["encounter.read"]["access"] == "break_glass"
    assert by_type["encounter.read"]["break_glass_grant"] == grant.json()["id"]


async def test_idempotent_replay_is_audited_as_a_read(practice_api: Api, owner_engine: AsyncEngine) -> None:
    key = uuid.uuid4().hex
    payload = encounter_payload()
    first = (await practice_api.post("/encounters", payload, key=key)).json()
    await practice_api.post("/encounters", payload, key=key)
    async with owner_engine.connect() as conn:
        replays = (
            await conn.execute(
                text(
                    "SELECT action, patient_ids FROM rcm.audit_event WHERE event_type = 'encounter.replay'"
                    " AND :e = ANY(resource_ids)"
                ),
                {"e": uuid.UUID(first["id"])},
            )
        ).all()
    assert replays == [("R", [uuid.UUID(first["patient_id"])])]
