"""Background re-encryption of a tenant's PHI onto its active key version, after a rotation.

No downtime: every ciphertext names its key version, so reads work throughout, whatever mix of versions the
rows hold. Work goes in bounded batches, each its own short transaction (keyset pagination on the row id,
rows locked FOR UPDATE only for their batch), and is idempotent: a redelivered job finds nothing left to do.

PHI columns are not all that depends on a PHI key: blob files are sealed under a key derived from one
version (``rcm.crypto.stream``). What else holds such data is handed in as ``sealed`` (``SealedElsewhere``):
crypto defines the protocol and knows none of its implementations, whose packages already depend on crypto
(the blob store implements it in ``rcm.blobs.reseal``; ``rcm.crypto.tasks.sealed_elsewhere`` composes them
for the job and the CLI). Each is re-sealed after the rows and counted with them: once neither a row nor
anything sealed elsewhere uses an older PHI key, those keys turn 'retired'.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.crypto import repository
from rcm.crypto.keyring import KeyStore
from rcm.crypto.models import KeyPurpose, KeyState
from rcm.crypto.phi import PhiTable, phi_tables
from rcm.kit.db import tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ResealPass:
    done: int  # items re-sealed under the active version by this pass
    overtaken: bool  # a newer rotation made another version active meanwhile (its own job finishes)


class Witness(Protocol):
    """Records, in the transaction that did it, that PHI was opened and sealed again under the active key.
    Re-encryption reads every PHI value of a tenant: the audit trail must say so (crypto knows no trail;
    the job and the CLI hand one in: ``rcm.audit.trail.reencryption_witness``)."""

    def __call__(
        self, session: AsyncSession, tenant_id: TenantId, *, kind: str, ids: Sequence[uuid.UUID]
    ) -> None: ...


class SealedElsewhere(Protocol):
    """Data outside the PHI columns sealed under a tenant's PHI key versions, which a rotation must move."""

    @property
    def name(self) -> str:
        """What it is, for logs (``blob``)."""
        ...

    async def reseal_stale(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: KeyStore,
        tenant_id: TenantId,
        *,
        active_version: int,
        witness: Witness,
    ) -> ResealPass:
        """Re-seal everything of the tenant under another version than ``active_version``: in bounded
        steps, each item switched atomically, idempotent, resumable after a crash."""
        ...

    async def count_stale(self, session: AsyncSession, tenant_id: TenantId, *, active_version: int) -> int:
        """How many items still depend on another version, in the caller's transaction (which holds the
        tenant's key lock)."""
        ...


@dataclass(frozen=True, slots=True)
class ReencryptReport:
    active_version: int
    rows: int  # rows rewritten by this run
    resealed: int  # items sealed elsewhere (blobs) re-sealed by this run
    retired: int  # older PHI key versions retired by this run
    complete: bool  # False when a newer rotation overtook this run (its own job finishes the work)


async def reencrypt_tenant_rows(
    sessions: async_sessionmaker[AsyncSession],
    store: KeyStore,
    tenant_id: TenantId,
    *,
    sealed: Sequence[SealedElsewhere],
    witness: Witness,
    batch_size: int = 500,
    tables: Sequence[PhiTable] | None = None,
) -> ReencryptReport:
    """Re-encrypt the tenant's PHI rows, then re-seal ``sealed`` (required: a caller that forgot the blobs
    would retire keys they still depend on; ``()`` says on purpose that nothing else needs moving). Each
    batch is witnessed (audited) in its own transaction."""
    context = TenantContext.single(tenant_id)
    entries = list(tables) if tables is not None else phi_tables()
    store.evict(tenant_id)  # read the versions as they are now, not as a cache saw them
    async with tenant_transaction(sessions, context) as session:
        active = (await store.keyring(session, tenant_id)).active_version
    rows_done = 0
    for entry in entries:
        after = uuid.UUID(int=0)
        while True:
            async with tenant_transaction(sessions, context) as session:
                keyring = await store.keyring(session, tenant_id)
                if keyring.active_version != active:
                    logger.info("re-encryption overtaken by a newer rotation", extra={"tenant_id": tenant_id})
                    return ReencryptReport(active, rows_done, 0, 0, complete=False)
                batch = await repository.lock_stale_batch(
                    session, entry, tenant_id, active, after=after, limit=batch_size
                )
                if not batch:
                    break
                rewritten = []
                for row in batch:
                    values: dict[str, bytes | None] = {}
                    for name in entry.columns:
                        ciphertext: bytes | None = row._mapping[name]
                        if ciphertext is not None:
                            plaintext = keyring.decrypt(
                                table=entry.name, column=name, row_id=row.id, ciphertext=ciphertext
                            )
                            ciphertext = keyring.encrypt(
                                table=entry.name, column=name, row_id=row.id, plaintext=plaintext
                            )
                        values[name] = ciphertext
                    rewritten.append((row.id, values))
                await repository.store_reencrypted(session, entry, tenant_id, rewritten)
                witness(session, tenant_id, kind=entry.name, ids=[row_id for row_id, _ in rewritten])
                after = batch[-1].id
                rows_done += len(batch)
    resealed = 0
    for other in sealed:
        done = await other.reseal_stale(sessions, store, tenant_id, active_version=active, witness=witness)
        resealed += done.done
        if done.overtaken:
            logger.info("re-sealing overtaken by a newer rotation", extra={"tenant_id": tenant_id})
            return ReencryptReport(active, rows_done, resealed, 0, complete=False)
    async with tenant_transaction(sessions, context) as session:
        await repository.lock_tenant_keys(session, tenant_id)
        remaining = 0
        for entry in entries:
            remaining += await repository.count_stale(session, entry, tenant_id, active)
        for other in sealed:
            # A key is retired only when nothing sealed elsewhere uses it either (a blob that could not be
            # re-sealed keeps its key 'decrypt_only', and the next run tries again).
            remaining += await other.count_stale(session, tenant_id, active_version=active)
        retired = 0
        if remaining == 0:
            retired = await repository.set_state(
                session, tenant_id, KeyPurpose.PHI, old=KeyState.DECRYPT_ONLY, new=KeyState.RETIRED
            )
    logger.info(
        "re-encryption done", extra={"tenant_id": tenant_id, "count": rows_done, "resealed": resealed}
    )
    return ReencryptReport(active, rows_done, resealed, retired, complete=remaining == 0)
