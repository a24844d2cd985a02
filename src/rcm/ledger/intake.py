"""``rcm remit import FILE``: an 835 uploaded by the operator, routed and posted.

The file is read whole first: one that is not a valid 835 is refused before anything is written, with the
segment and position where it fails (never content). Each transaction set (one payment) is routed to its
practice by the payee (N1*PE): its NPI against the practice's billing provider NPI, its TIN (REF*TJ or N1*PE
FI) against the practice's TIN reference. A set matching no practice, or several, is reported as
unassigned and queued, the file sealed, for staff to route by hand (``rcm.ledger.unassigned_store``);
nothing of it is posted until then. Billers upload through
``POST /api/v1/billing/remittances``, routed among their own practices only. Each practice keeps the
file (encrypted, ``rcm.interchanges``) and applies its sets in one transaction: claims moved and the ledger
posted (``rcm.claims.adjudication.apply_set``); a set received before is refused as a duplicate.
"""

from __future__ import annotations

import gc
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims.acknowledgments import where
from rcm.claims.adjudication import ReadSet, apply_set, read_set
from rcm.claims.applying import Applying
from rcm.claims.building import CLAIM
from rcm.claims.states import Cause
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import KeyProvider
from rcm.identity.principal import Principal
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction, FileStatus
from rcm.interchanges.repository import X12FileRepository
from rcm.kit.db import platform_transaction
from rcm.kit.errors import FieldError, MalformedBody
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.ledger import schemas
from rcm.ledger import unassigned_store as unassigned
from rcm.ledger.models import UnassignedFile, UnassignedRemittance
from rcm.ledger.schemas import RemittanceImport, RemittanceSet
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.models import Tenant
from rcm.tenancy.repository import active_tenants, tenant_by_id
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import one_practice
from rcm.x12 import X12Error, transactions
from rcm.x12.remittance_model import Payee

JOB = "remit.import"


class NotAnERA(Exception):
    """The file is not a valid 835: the message names the segment and position."""


@dataclass(frozen=True, slots=True)
class SetHeader:
    index: int  # the set's place in the file, from 0
    control_number: str  # ST02
    trace_number: str  # TRN02
    total_paid: int
    payee: Payee
    payer_name: str
    read: ReadSet  # the whole set, read once: applied as read here


def all_duplicates(summary: RemittanceImport) -> bool:
    return summary.transaction_sets > 0 and len(summary.duplicates) == summary.transaction_sets


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a file is read: reading makes tracked objects by the segment
    (a list per segment, structs per claim, line and adjustment: some 200,000 for 10,000 claims), none in a
    cycle, so the collections their allocations would trigger walk ever more objects to free nothing (about
    a fifth of the reading's time). Reading never awaits: no other task runs meanwhile. Restored as it was,
    whatever happens."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_headers(data: bytes) -> list[SetHeader]:
    """Every set's header (and the set, read whole), the whole file checked as an 835 (X12Error names where
    it is not). The file is read once: what is applied is what was read here."""
    found = []
    try:
        with _collector_paused():
            found = _read_sets(data)
    except X12Error as exc:
        raise NotAnERA(where(exc)) from exc
    if not found:
        raise NotAnERA("segment ST: the file holds no transaction set")
    return found


def _read_sets(data: bytes) -> list[SetHeader]:
    """Each set read whole, in file order (``read_headers``)."""
    found = []
    for index, transaction in enumerate(transactions(data)):
        if transaction.kind != "835":
            raise X12Error(f"a {transaction.kind} set in an 835 file", segment_id="ST")
        read = read_set(transaction)
        header = read.header
        found.append(
            SetHeader(
                index,
                read.control_number,
                header.trace_number,
                header.total_paid,
                header.payee,
                header.payer.name,
                read,
            )
        )
    return found


def _practice_ids(tenants: list[Tenant], resolver: SecretResolver) -> tuple[dict[str, set[uuid.UUID]], ...]:
    by_npi: dict[str, set[uuid.UUID]] = defaultdict(set)
    by_tin: dict[str, set[uuid.UUID]] = defaultdict(set)
    for tenant in tenants:
        manifest = tenant.manifest
        by_npi[manifest.billing_provider.npi].add(tenant.id)
        if manifest.tin_reference is not None:
            try:
                tin = resolver.resolve(manifest.tin_reference).get_secret_value().replace("-", "")
            except Exception:  # noqa: S112 - an unreadable TIN routes nothing, the NPI still may
                continue
            by_tin[tin].add(tenant.id)
    return by_npi, by_tin


def route(headers: list[SetHeader], tenants: list[Tenant], resolver: SecretResolver) -> dict[int, uuid.UUID]:
    """Set index -> the one practice its payee names (sets naming none or several are left out)."""
    by_npi, by_tin = _practice_ids(tenants, resolver)
    routed = {}
    for header in headers:
        found: set[uuid.UUID] = set()
        if header.payee.npi:
            found |= by_npi.get(header.payee.npi, set())
        if header.payee.tin:
            found |= by_tin.get(header.payee.tin.replace("-", ""), set())
        if len(found) == 1:
            routed[header.index] = found.pop()
    return routed


async def _unassigned(
    session: AsyncSession,
    provider: KeyProvider,
    data: bytes,
    left: list[SetHeader],
    *,
    candidates: list[uuid.UUID],
    actor: Principal,
    request: RequestInfo,
) -> list[RemittanceSet]:
    """The sets ``left`` (routed to no practice), queued (the file sealed) for staff to route by hand."""
    queued = [
        unassigned.Queued(
            h.index, h.control_number, h.trace_number, h.total_paid, h.payer_name, h.payee.npi, h.payee.tin
        )
        for h in left
    ]
    ids = await unassigned.keep(
        session, provider, data, queued, candidates=candidates, actor=actor, request=request
    )
    return [
        RemittanceSet(
            set=h.control_number,
            trace_number=h.trace_number,
            amount_cents=h.total_paid,
            payee_npi=h.payee.npi,
            reason=unassigned.REASON,
            queued_id=ids.get(h.index),
        )
        for h in left
    ]


async def apply_routed(
    scope: TenantScope,
    store: BlobStore,
    data: bytes,
    *,
    headers: list[SetHeader],
    indexes: set[int],
    summary: RemittanceImport,
) -> None:
    """In one practice: keep the file (once per content), apply the sets ``indexes`` routed to it (claims
    moved, ledger posted, repeats refused), the file settled ``processed``, the import audited."""
    row, _ = await files.keep(scope, store, data, direction=Direction.INBOUND, connector="upload")
    row = await scope.repo(X12FileRepository).locked(row.id) or row
    work = Applying(scope, row.id, Cause.REMITTANCE)
    for index in sorted(indexes):  # in file order
        header = headers[index]
        verdict, reason = await apply_set(work, row.id, header.read)
        named = RemittanceSet(set=header.control_number, trace_number=header.trace_number, reason=reason)
        if verdict == "duplicate":
            summary.duplicates.append(named)
        elif verdict == "held":
            summary.held.append(named)
        else:
            summary.posted += 1
    if row.status is FileStatus.KEPT:
        await scope.repo(X12FileRepository).settle([row.id], FileStatus.PROCESSED)
    outcome = work.outcome("835")
    summary.claims_matched += outcome.matched
    summary.claims_unmatched += outcome.unmatched
    summary.unmatched_reasons.extend(outcome.unmatched_reasons)
    summary.posted_cents += outcome.posted_cents
    summary.unapplied_cents += outcome.unapplied_cents
    summary.provider_adjustments_cents += outcome.provider_adjustments_cents
    summary.practices[scope.manifest.slug] = len(indexes)
    scope.audit(
        "claim.remittance_imported",
        Action.UPDATE,
        resource_type=CLAIM,
        resource_ids=[row.id, *work.claims],
        patient_ids=list(work.claims.values()),
        detail={"sets": len(indexes), "moved": len(work.claims)},
    )


async def import_file(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    store: BlobStore,
    resolver: SecretResolver,
    data: bytes,
    *,
    actor: Principal,
    request: RequestInfo,
    headers: list[SetHeader] | None = None,
) -> RemittanceImport:
    """The operator's import: routed among every active practice, each applied in a transaction of its own.
    ``headers``: the file's ``read_headers`` when the caller has read it already (it is read once)."""
    if headers is None:
        headers = read_headers(data)
    async with platform_transaction(sessions) as session:
        tenants = await active_tenants(session)
        routed = route(headers, tenants, resolver)
        left = await _unassigned(
            session,
            keystore.provider,
            data,
            [h for h in headers if h.index not in routed],
            candidates=[],
            actor=actor,
            request=request,
        )
    summary = RemittanceImport(transaction_sets=len(headers), unassigned=left)
    for tenant_id in dict.fromkeys(routed.values()):
        indexes = {i for i, t in routed.items() if t == tenant_id}
        async with job_tenant_scope(
            sessions, keystore, TenantId(tenant_id), actor=actor, request=request, job=JOB
        ) as scope:
            await apply_routed(scope, store, data, headers=headers, indexes=indexes, summary=summary)
    return summary


async def upload(
    staff: StaffScope, provider: KeyProvider, store: BlobStore, resolver: SecretResolver, data: bytes
) -> RemittanceImport:
    """A biller's upload: routed among the caller's practices only (a payee of any other practice is
    unassigned, as one of none, and queued for the supervisors of the caller's practices), applied in the
    request's transaction."""
    try:
        headers = read_headers(data)
    except NotAnERA as exc:
        raise MalformedBody(f"Not a valid 835: {exc}.", errors=[FieldError("", str(exc))]) from exc
    tenants = [t for t in [await tenant_by_id(staff.session, i) for i in staff.tenant_ids] if t is not None]
    routed = route(headers, [t for t in tenants if t.status == "active"], resolver)
    left = await _unassigned(
        staff.session,
        provider,
        data,
        [h for h in headers if h.index not in routed],
        candidates=list(staff.tenant_ids),
        actor=staff.principal,
        request=staff.request,
    )
    summary = RemittanceImport(transaction_sets=len(headers), unassigned=left)
    for tenant_id in dict.fromkeys(routed.values()):
        indexes = {i for i, t in routed.items() if t == tenant_id}
        practice = await one_practice(staff, tenant_id)
        await apply_routed(practice, store, data, headers=headers, indexes=indexes, summary=summary)
    return summary


async def post_by_hand(
    practice: TenantScope,
    store: BlobStore,
    data: bytes,
    index: int,
    *,
    resource_type: str,
    resource_ids: list[uuid.UUID],
) -> RemittanceImport:
    """The set ``index`` of the 835 ``data``, sent to ``practice`` by a person (from the unassigned-ERA
    queue, or a held set another practice's reviewer routed here), applied there exactly as one routed by
    its payee: posted, held when it does not balance, refused when received before. Audited in the
    practice's trail, naming what was routed (``resource_ids``)."""
    headers = read_headers(data)
    summary = RemittanceImport(transaction_sets=1)
    await apply_routed(practice, store, data, headers=headers, indexes={index}, summary=summary)
    practice.audit(
        "remittance.routed_by_hand",
        Action.UPDATE,
        resource_type=resource_type,
        resource_ids=resource_ids,
        detail={"posted": summary.posted, "duplicates": len(summary.duplicates), "held": len(summary.held)},
    )
    return summary


async def queue_by_hand(
    session: AsyncSession,
    provider: KeyProvider,
    data: bytes,
    index: int,
    *,
    candidates: list[uuid.UUID],
    actor: Principal,
    request: RequestInfo,
) -> RemittanceSet:
    """The set ``index`` of the 835 ``data`` put in the unassigned-ERA queue by a person, as a set whose
    payee names no practice is (``candidates``: the practices whose supervisors may route it from there)."""
    headers = read_headers(data)
    [queued] = await _unassigned(
        session, provider, data, [headers[index]], candidates=candidates, actor=actor, request=request
    )
    return queued


async def route_by_hand(
    practice: TenantScope,
    provider: KeyProvider,
    store: BlobStore,
    row: UnassignedRemittance,
    file: UnassignedFile,
) -> schemas.RoutedUnassigned:
    """A queued set (locked by ``unassigned.take``) posted into ``practice`` (``post_by_hand``), then marked
    routed; audited in the practice's trail and the platform's."""
    data = unassigned.unseal(provider, file)
    summary = await post_by_hand(
        practice, store, data, row.set_index, resource_type=unassigned.RESOURCE, resource_ids=[row.id]
    )
    tenant_id = practice.context.tenant_id
    await unassigned.mark_routed(
        practice.session, row, tenant_id, actor=practice.principal, request=practice.request
    )
    await practice.session.refresh(row)
    return schemas.RoutedUnassigned(
        queued=unassigned.view(row), tenant=practice.manifest.slug, result=summary
    )
