"""All SQL of the crypto package; every statement runs in the caller's tenant transaction (RLS applies)."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import LargeBinary, Row, and_, bindparam, func, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.crypto.models import DataKey, KeyPurpose, KeyState
from rcm.crypto.phi import PhiTable
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


# Re-encryption after a rotation ----------------------------------------------------------------------


def _stale(entry: PhiTable, version: int) -> Any:
    # Bytes 2..5 of a ciphertext hold its key version (see keyring's layout); SQL substring is 1-based.
    current = literal(struct.pack(">I", version), LargeBinary)
    return or_(
        *(
            and_(entry.table.c[name].is_not(None), func.substring(entry.table.c[name], 2, 4) != current)
            for name in entry.columns
        )
    )


async def count_stale(session: AsyncSession, entry: PhiTable, tenant_id: TenantId, version: int) -> int:
    """Rows of ``entry`` still holding a PHI value under another key version than ``version``."""
    table = entry.table
    result = await session.execute(
        select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id, _stale(entry, version))
    )
    return int(result.scalar_one())


async def lock_stale_batch(
    session: AsyncSession, entry: PhiTable, tenant_id: TenantId, version: int, *, after: uuid.UUID, limit: int
) -> Sequence[Row[Any]]:
    """The next ``limit`` stale rows after ``after`` (keyset on the id), locked until the batch commits."""
    table = entry.table
    stmt = (
        select(table.c.id, *(table.c[name] for name in entry.columns))
        .where(table.c.tenant_id == tenant_id, table.c.id > after, _stale(entry, version))
        .order_by(table.c.id)
        .limit(limit)
        .with_for_update()
    )
    return (await session.execute(stmt)).all()


async def store_reencrypted(
    session: AsyncSession,
    entry: PhiTable,
    tenant_id: TenantId,
    rows: Sequence[tuple[uuid.UUID, dict[str, bytes | None]]],
) -> None:
    """Write re-encrypted PHI columns back, one executemany for the batch."""
    table = entry.table
    stmt = (
        update(table)
        .where(table.c.tenant_id == bindparam("b_tenant_id"), table.c.id == bindparam("b_row_id"))
        .values({name: bindparam(f"b_{name}") for name in entry.columns})
    )
    params = [
        {
            "b_tenant_id": tenant_id,
            "b_row_id": row_id,
            **{f"b_{name}": value for name, value in values.items()},
        }
        for row_id, values in rows
    ]
    await session.execute(stmt, params)
