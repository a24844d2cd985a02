"""The single-use record of client assertions (``rcm.identity.clients_repository.remember_assertion``)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.identity.clients_repository import remember_assertion
from rcm.kit.db import platform_transaction
from rcm.kit.models import utcnow

LEEWAY = timedelta(seconds=30)


async def test_a_jti_is_forgotten_only_once_its_leeway_has_passed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client_id = f"rcm_c_{uuid.uuid4().hex[:24]}"
    now = utcnow()

    async def remember(session: AsyncSession, jti: str, expired_for: timedelta) -> bool:
        return await remember_assertion(
            session, client_id=client_id, jti=jti, expires_at=now - expired_for, keep_expired_for=LEEWAY
        )

    async with platform_transaction(sessions) as session:
        assert await remember(session, "long-expired", timedelta(hours=1))
        assert await remember(session, "inside-leeway", timedelta(seconds=5))
    async with platform_transaction(sessions) as session:
        # Past exp + leeway no verifier accepts the assertion any more: its row is purged, the jti is free.
        assert await remember(session, "long-expired", timedelta(hours=1))
        # Inside the leeway the assertion would still be accepted: its jti stays remembered (a replay).
        assert not await remember(session, "inside-leeway", timedelta(seconds=5))
