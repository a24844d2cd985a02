"""All SQL of the crypto package; every statement runs in the caller's tenant transaction (RLS applies)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.crypto.models import DataKey, KeyPurpose, KeyState
from rcm.kit.tenant import TenantId

_TENANT_KEY_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


async def lock_tenant_keys(session: AsyncSession, tenant_id: TenantId) -> None:
    """Serialise key creation, rotation, re-wrap and shred of one tenant until the transaction ends."""
    await session.execute(_TENANT_KEY_LOCK, {"key": f"rcm.data_key:{tenant_id}"})


async def load_keys(session: AsyncSession, tenant_id: TenantId) -> Sequence[DataKey]:
    result = await session.execute(
        select(DataKey)
        .where(DataKey.tenant_id == tenant_id)
        .order_by(DataKey.purpose, DataKey.version)
        .execution_options(populate_existing=True)
    )
    return result.scalars().all()


async def next_version(session: AsyncSession, tenant_id: TenantId, purpose: KeyPurpose) -> int:
    result = await session.execute(
        select(func.coalesce(func.max(DataKey.version), 0)).where(
            DataKey.tenant_id == tenant_id, DataKey.purpose == purpose.value
        )
    )
    return int(result.scalar_one()) + 1


async def set_state(
    session: AsyncSession, tenant_id: TenantId, purpose: KeyPurpose, *, old: KeyState, new: KeyState
) -> int:
    result = await session.execute(
        update(DataKey)
        .where(DataKey.tenant_id == tenant_id, DataKey.purpose == purpose.value, DataKey.state == old.value)
        .values(state=new.value, updated_at=func.now())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def insert_key(
    session: AsyncSession,
    tenant_id: TenantId,
    *,
    purpose: KeyPurpose,
    version: int,
    kek_id: str,
    wrapped: bytes,
) -> None:
    session.add(
        DataKey(
            tenant_id=tenant_id,
            purpose=purpose.value,
            version=version,
            state=KeyState.ACTIVE.value,
            kek_id=kek_id,
            wrapped=wrapped,
        )
    )
    await session.flush()


async def store_rewrapped(
    session: AsyncSession, tenant_id: TenantId, purpose: str, version: int, *, kek_id: str, wrapped: bytes
) -> None:
    await session.execute(
        update(DataKey)
        .where(DataKey.tenant_id == tenant_id, DataKey.purpose == purpose, DataKey.version == version)
        .values(kek_id=kek_id, wrapped=wrapped, updated_at=func.now())
    )


async def destroy_all(session: AsyncSession, tenant_id: TenantId) -> int:
    result = await session.execute(
        update(DataKey)
        .where(DataKey.tenant_id == tenant_id, DataKey.state != KeyState.DESTROYED.value)
        .values(state=KeyState.DESTROYED.value, wrapped=None, updated_at=func.now())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def insert_tombstone(session: AsyncSession, tenant_id: TenantId) -> None:
    session.add(
        DataKey(
            tenant_id=tenant_id,
            purpose=KeyPurpose.PHI.value,
            version=1,
            state=KeyState.DESTROYED.value,
            kek_id="none",
            wrapped=None,
        )
    )
    await session.flush()
