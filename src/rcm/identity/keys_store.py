"""Every SQL statement on our token-signing keys (``signing_key``, a platform table: no tenant context).

The app role only reads these rows; the writes (a new key, demotion, retirement, re-wrap) run in the
caller's transaction, which the caller opens as the control role. The rules (when a key is demoted, how
long it stays published) live in ``rcm.identity.keys``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.identity.models import SigningKey, SigningKeyState

_LIVE = (SigningKeyState.ACTIVE, SigningKeyState.PUBLISHED)


async def active_key_row(session: AsyncSession) -> SigningKey | None:
    result = await session.execute(select(SigningKey).where(SigningKey.state == SigningKeyState.ACTIVE))
    return result.scalar_one_or_none()


async def add_key(session: AsyncSession, row: SigningKey) -> SigningKey:
    """INSERT a new key now: a second active key fails here on the unique index, not at commit."""
    session.add(row)
    await session.flush()
    return row


async def publish_active_key(session: AsyncSession, *, until: datetime) -> None:
    """The active key stops signing and stays in the JWKS until ``until``."""
    await session.execute(
        update(SigningKey)
        .where(SigningKey.state == SigningKeyState.ACTIVE)
        .values(state=SigningKeyState.PUBLISHED, published_until=until)
    )


async def retire_published_keys(session: AsyncSession, *, now: datetime) -> list[str]:
    """Retire the published keys whose time in the JWKS is over; returns their kids."""
    result = await session.execute(
        update(SigningKey)
        .where(SigningKey.state == SigningKeyState.PUBLISHED, SigningKey.published_until <= now)
        .values(state=SigningKeyState.RETIRED, retired_at=now)
        .returning(SigningKey.kid)
    )
    return list(result.scalars())


async def live_keys_for_update(session: AsyncSession) -> Sequence[SigningKey]:
    """The active and published keys by kid, locked until the transaction ends (a re-wrap rewrites them)."""
    statement = (
        select(SigningKey).where(SigningKey.state.in_(_LIVE)).order_by(SigningKey.kid).with_for_update()
    )
    return (await session.execute(statement)).scalars().all()


async def live_keys(session: AsyncSession) -> Sequence[SigningKey]:
    """The active and published keys, newest first: what the JWKS publishes and tokens verify against."""
    statement = select(SigningKey).where(SigningKey.state.in_(_LIVE)).order_by(SigningKey.created_at.desc())
    return (await session.execute(statement)).scalars().all()
