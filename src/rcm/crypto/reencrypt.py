"""Background re-encryption of a tenant's PHI onto its active key version, after a rotation.

No downtime: every ciphertext names its key version, so reads work throughout, whatever mix of versions the
rows hold. Work goes in bounded batches, each its own short transaction (keyset pagination on the row id,
rows locked FOR UPDATE only for their batch), and is idempotent: a redelivered job finds nothing left to do.
Once no row uses an older PHI key, those keys turn 'retired'.
"""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import LargeBinary, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from rcm.crypto import repository
from rcm.crypto.keyring import KeyStore
from rcm.crypto.models import KeyPurpose, KeyState
from rcm.crypto.phi import PhiTable, phi_tables
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReencryptReport:
    active_version: int
    rows: int  # rows rewritten by this run
    retired: int  # older PHI key versions retired by this run
    complete: bool  # False when a newer rotation overtook this run (its own job finishes the work)


def _stale(entry: PhiTable, version: int) -> ColumnElement[bool]:
    # Bytes 2..5 of a ciphertext hold its key version (see keyring's layout); SQL substring is 1-based.
    current = literal(struct.pack(">I", version), LargeBinary)
    return or_(
        *(
            and_(entry.table.c[name].is_not(None), func.substring(entry.table.c[name], 2, 4) != current)
            for name in entry.columns
        )
    )


async def _count_stale(session: AsyncSession, entry: PhiTable, tenant_id: TenantId, version: int) -> int:
    table = entry.table
    result = await session.execute(
        select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id, _stale(entry, version))
    )
    return int(result.scalar_one())


async def reencrypt_tenant_rows(
    sessions: async_sessionmaker[AsyncSession],
    store: KeyStore,
    tenant_id: TenantId,
    *,
    batch_size: int = 500,
    tables: Sequence[PhiTable] | None = None,
) -> ReencryptReport:
    context = TenantContext.single(tenant_id)
    entries = list(tables) if tables is not None else phi_tables()
    store.evict(tenant_id)  # read the versions as they are now, not as a cache saw them
    async with tenant_transaction(sessions, context) as session:
        active = (await store.keyring(session, tenant_id)).active_version
    rows_done = 0
    for entry in entries:
        table = entry.table
        update_stmt = (
            update(table)
            .where(table.c.tenant_id == bindparam("b_tenant_id"), table.c.id == bindparam("b_row_id"))
            .values({name: bindparam(f"b_{name}") for name in entry.columns})
        )
        after = uuid.UUID(int=0)
        while True:
            async with tenant_transaction(sessions, context) as session:
                keyring = await store.keyring(session, tenant_id)
                if keyring.active_version != active:
                    logger.info("re-encryption overtaken by a newer rotation", extra={"tenant_id": tenant_id})
                    return ReencryptReport(active, rows_done, 0, complete=False)
                batch = (
                    await session.execute(
                        select(table.c.id, *(table.c[name] for name in entry.columns))
                        .where(table.c.tenant_id == tenant_id, table.c.id > after, _stale(entry, active))
                        .order_by(table.c.id)
                        .limit(batch_size)
                        .with_for_update()
                    )
                ).all()
                if not batch:
                    break
                params = []
                for row in batch:
                    values: dict[str, object] = {"b_tenant_id": tenant_id, "b_row_id": row.id}
                    for name in entry.columns:
                        ciphertext: bytes | None = row._mapping[name]
                        if ciphertext is not None:
                            plaintext = keyring.decrypt(
                                table=entry.name, column=name, row_id=row.id, ciphertext=ciphertext
                            )
                            ciphertext = keyring.encrypt(
                                table=entry.name, column=name, row_id=row.id, plaintext=plaintext
                            )
                        values[f"b_{name}"] = ciphertext
                    params.append(values)
                await session.execute(update_stmt, params)
                after = batch[-1].id
                rows_done += len(batch)
    async with tenant_transaction(sessions, context) as session:
        await repository.lock_tenant_keys(session, tenant_id)
        remaining = 0
        for entry in entries:
            remaining += await _count_stale(session, entry, tenant_id, active)
        retired = 0
        if remaining == 0:
            retired = await repository.set_state(
                session, tenant_id, KeyPurpose.PHI, old=KeyState.DECRYPT_ONLY, new=KeyState.RETIRED
            )
    logger.info("re-encryption done", extra={"tenant_id": tenant_id, "count": rows_done})
    return ReencryptReport(active, rows_done, retired, complete=remaining == 0)
