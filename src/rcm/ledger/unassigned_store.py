"""The unassigned-ERA queue: 835 payments whose payee names no practice, or several, kept until staff route
them by hand.

Where the file is kept. A payment not yet routed belongs to no practice, so no practice's data key may seal
it, and the blob store writes only within a practice. The file is therefore kept in a platform-level table
(``rcm.unassigned_era_file``, one row per content), sealed under a data key of its own: AES-256-GCM, the
row id bound as associated data, that key wrapped by the key provider's KEK (the same KEK that wraps every
practice's keys) with the purpose and row id as its context. Nothing of the file is in clear; each queued
set (``rcm.unassigned_remittance``) holds only what routing needs and no PHI: payer, TRN02, BPR02, payee NPI
and the last four of its TIN. Routed, the set is applied exactly as an automatically routed one: the whole
file kept in the practice (``rcm.interchanges``, under the practice's key, as every routed import keeps it)
and linked to the remittance its postings hang on; a payment received before is still a duplicate.

Who sees the queue: a set a biller uploaded names the practices that biller could route among
(``candidates``); supervisors assigned to one of them list it and route it to one of them. A set from an
operator's import (``rcm remit import``) has no candidates: platform admins (MFA) list and route those, and
any other, to any active practice. Each routing is audited in the practice's trail and the platform's.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit.events import Action, RequestInfo
from rcm.crypto.provider import KeyProvider, WrappedKey
from rcm.identity import audit_hooks
from rcm.identity.principal import Principal
from rcm.kit.errors import Conflict, NotFound
from rcm.kit.tenant import PLATFORM_TENANT
from rcm.ledger import schemas
from rcm.ledger.models import UnassignedFile, UnassignedRemittance

RESOURCE = "unassigned_remittance"
_PURPOSE = "unassigned_era"
_AAD = b"rcm/unassigned-era/v1:"
_NONCE = 12
REASON = "the payee matches no practice, or several"
# The same file uploaded again by a biller of other practices: those practices' supervisors may route it too.
_MORE_CANDIDATES = text(
    "ARRAY(SELECT DISTINCT c FROM unnest(rcm.unassigned_remittance.candidates || excluded.candidates) AS c)"
)


def _context(file_id: uuid.UUID) -> dict[str, str]:
    return {"purpose": _PURPOSE, "file": str(file_id)}


def seal(provider: KeyProvider, file_id: uuid.UUID, data: bytes) -> tuple[WrappedKey, bytes]:
    """``data`` encrypted under a fresh data key, and that key wrapped by the provider's KEK."""
    key = AESGCM.generate_key(bit_length=256)
    nonce = secrets.token_bytes(_NONCE)
    sealed = nonce + AESGCM(key).encrypt(nonce, data, _AAD + file_id.bytes)
    return provider.wrap(key, context=_context(file_id)), sealed


def unseal(provider: KeyProvider, row: UnassignedFile) -> bytes:
    key = provider.unwrap(WrappedKey(row.kek_id, row.wrapped_key), context=_context(row.id))
    try:
        return AESGCM(key).decrypt(row.ciphertext[:_NONCE], row.ciphertext[_NONCE:], _AAD + row.id.bytes)
    except InvalidTag:
        raise ValueError(f"unassigned ERA file {row.id} failed its integrity check") from None


@dataclass(frozen=True, slots=True)
class Queued:
    """A set routed to no practice: its place in the file and what routing needs (no PHI)."""

    index: int
    control_number: str
    trace_number: str
    total_paid: int
    payer_name: str
    payee_npi: str | None
    payee_tin: str | None


async def keep(
    session: AsyncSession,
    provider: KeyProvider,
    data: bytes,
    sets: Sequence[Queued],
    *,
    candidates: Sequence[uuid.UUID],
    actor: Principal,
    request: RequestInfo,
) -> dict[int, uuid.UUID]:
    """Queue the unassigned ``sets`` of the file, the file kept sealed once per content; a set queued
    before (the same file again) gains the new candidates unless it was routed. Returns each set's queue id
    by its index."""
    if not sets:
        return {}
    digest = hashlib.sha256(data).digest()
    file_id = await session.scalar(select(UnassignedFile.id).where(UnassignedFile.sha256 == digest))
    if file_id is None:
        file_id = uuid.uuid4()
        wrapped, sealed = seal(provider, file_id, data)
        await session.execute(
            pg_insert(UnassignedFile)
            .values(
                id=file_id,
                sha256=digest,
                size=len(data),
                kek_id=wrapped.kek_id,
                wrapped_key=wrapped.blob,
                ciphertext=sealed,
            )
            .on_conflict_do_nothing(index_elements=["sha256"])
        )
        file_id = await session.scalar(select(UnassignedFile.id).where(UnassignedFile.sha256 == digest))
    for queued in sets:
        await session.execute(
            pg_insert(UnassignedRemittance)
            .values(
                id=uuid.uuid4(),
                file_id=file_id,
                set_index=queued.index,
                set_control_number=queued.control_number,
                trace_number=queued.trace_number,
                payer_name=queued.payer_name,
                total_paid_cents=queued.total_paid,
                payee_npi=queued.payee_npi,
                payee_tin_last4=queued.payee_tin.replace("-", "")[-4:] if queued.payee_tin else None,
                reason=REASON,
                candidates=list(candidates),
                received_by=actor.subject,
            )
            .on_conflict_do_update(
                constraint="uq_unassigned_remittance_set",
                set_={"candidates": _MORE_CANDIDATES},
                where=UnassignedRemittance.routed_at.is_(None),
            )
        )
    rows = await session.execute(
        select(UnassignedRemittance.set_index, UnassignedRemittance.id).where(
            UnassignedRemittance.file_id == file_id,
            UnassignedRemittance.set_index.in_([q.index for q in sets]),
        )
    )
    ids: dict[int, uuid.UUID] = dict(rows.tuples().all())
    await _platform_audit(
        session, actor, request, "remittance.unassigned_queued", Action.CREATE, ids.values(), sets=len(ids)
    )
    return ids


def view(row: UnassignedRemittance) -> schemas.UnassignedView:
    return schemas.UnassignedView(
        id=row.id,
        received_at=row.created_at,
        set_control_number=row.set_control_number,
        trace_number=row.trace_number,
        payer_name=row.payer_name,
        total_paid_cents=row.total_paid_cents,
        payee_npi=row.payee_npi,
        payee_tin_last4=row.payee_tin_last4,
        reason=row.reason,
        routed_tenant_id=row.routed_tenant_id,
        routed_at=row.routed_at,
    )


async def listed(
    session: AsyncSession, *, visible_to: Sequence[uuid.UUID] | None, routed: bool
) -> list[UnassignedRemittance]:
    """The queue, oldest first: every set (``visible_to`` None: an admin) or those naming one of the
    practices ``visible_to`` among their candidates; open ones, or routed ones with ``routed``."""
    stmt = select(UnassignedRemittance).order_by(UnassignedRemittance.created_at, UnassignedRemittance.id)
    stmt = stmt.where(
        UnassignedRemittance.routed_at.is_not(None) if routed else UnassignedRemittance.routed_at.is_(None)
    )
    if visible_to is not None:
        stmt = stmt.where(UnassignedRemittance.candidates.overlap(list(visible_to)))
    return list((await session.scalars(stmt.limit(500))).all())


async def listed_audit(
    session: AsyncSession, actor: Principal, request: RequestInfo, ids: Sequence[uuid.UUID]
) -> None:
    """An admin's read of the queue, on the platform's trail."""
    await _platform_audit(
        session, actor, request, "remittance.unassigned_list", Action.READ, ids, count=len(ids)
    )


async def take(
    session: AsyncSession, queued_id: uuid.UUID, *, visible_to: Sequence[uuid.UUID] | None
) -> tuple[UnassignedRemittance, UnassignedFile]:
    """The queued set, locked; 404 when the caller may not see it, 409 when it was routed already."""
    stmt = select(UnassignedRemittance).where(UnassignedRemittance.id == queued_id).with_for_update()
    row = await session.scalar(stmt)
    if row is None or (visible_to is not None and not set(row.candidates) & set(visible_to)):
        raise NotFound()
    if row.routed_at is not None:
        raise Conflict("This payment was routed already.")
    file = await session.get_one(UnassignedFile, row.file_id)
    return row, file


async def mark_routed(
    session: AsyncSession,
    row: UnassignedRemittance,
    tenant_id: uuid.UUID,
    *,
    actor: Principal,
    request: RequestInfo,
) -> None:
    """The set recorded routed (the row was locked by ``take``), audited in the platform's trail."""
    await session.execute(
        update(UnassignedRemittance)
        .where(UnassignedRemittance.id == row.id)
        .values(routed_tenant_id=tenant_id, routed_at=datetime.now(UTC), routed_by=actor.subject)
    )
    await _platform_audit(
        session,
        actor,
        request,
        "remittance.routed_by_hand",
        Action.UPDATE,
        [row.id],
        tenant_id=str(tenant_id),
    )


async def _platform_audit(  # noqa: PLR0917 - an event's parts
    session: AsyncSession,
    actor: Principal,
    request: RequestInfo,
    event_type: str,
    action: Action,
    ids: Iterable[uuid.UUID],
    **detail: str | int,
) -> None:
    """The event on the platform's trail (the queue belongs to no practice)."""
    await audit_hooks.admin_action(
        session,
        request=request,
        principal=actor,
        event_type=event_type,
        action=action,
        tenant_id=PLATFORM_TENANT,
        resource_type=RESOURCE,
        resource_ids=tuple(ids),
        detail=dict(detail),
    )
