"""``rcm token`` runs the same grant code in-process; the demo seeds one API client per practice."""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.demo import seed_demo
from rcm.identity.cli import exchange_in_process
from rcm.identity.keys import KeyRing
from rcm.identity.principal import PrincipalKind, Role
from rcm.identity.tokens import verify_access_token


async def test_demo_clients_and_dev_users_get_tokens_in_process(
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    await seed_demo(settings)
    await seed_demo(settings)  # idempotent: the deterministic clients are not duplicated
    clients = json.loads((settings.data_dir / "demo-clients.json").read_text())
    assert set(clients) == {
        "lakeside-pediatrics",
        "riverside-community-hospital",
        "summit-orthopedics",
        "sunrise-family-medicine",
    }
    sunrise = clients["sunrise-family-medicine"]
    # The first signing key is made by the control role, as `make run` does (alone, no app request has yet).
    keys = await KeyRing(settings, control=control_sessions).verification_keys(sessions)

    result = await exchange_in_process(
        settings, sessions, client_id=sunrise["client_id"], secret=sunrise["client_secret"]
    )
    assert result.status == 200
    principal = verify_access_token(result.body["access_token"], keys, settings)
    assert principal.kind is PrincipalKind.CLIENT
    assert principal.client_id == sunrise["client_id"]

    coder = await exchange_in_process(settings, sessions, email="coder@demo.rcm.test")
    assert coder.status == 200
    person = verify_access_token(coder.body["access_token"], keys, settings)
    assert person.roles == frozenset({Role.CODER})
    assert not person.mfa

    admin = await exchange_in_process(settings, sessions, email="admin@demo.rcm.test", mfa=True)
    assert verify_access_token(admin.body["access_token"], keys, settings).mfa

    wrong = await exchange_in_process(settings, sessions, client_id=sunrise["client_id"], secret="nope")
    assert wrong.status == 401
