"""276/277 claim status inquiries: a claim the payer has had for longer than its ``status_inquiry_days``
without an answer is asked about (one 276 per claim, in real time through the payer's status connector),
both files kept encrypted, and the 277's first claim status (STC01) applied:

- A0/A1/A2/A5 (received, accepted into adjudication): a still ``submitted`` claim becomes ``accepted`` with
  the payer's claim control number (REF*1K), caused by ``status`` and linked to the 277.
- A3/A6/A7/A8 (returned, rejected): the claim becomes ``rejected`` and the billing queue gets a
  ``rejection`` item; the event's reason is the STC codes in words (as for a 277CA).
- F* (finalized): noted by the inquiry row only. Adjudication comes from the 835 (a 277 moves no claim to
  paid or denied); a still ``submitted`` claim the payer has finalized is ``accepted`` (it got that far).
- P* (pending): nothing moves; the next inquiry is due after the payer's interval again.
- A4 (not found), E* and anything else, a 277 naming no claim, or a 999 refusing the 276: a
  ``follow_up`` billing item, as ``rcm.claims.follow_up`` opens one.

Each claim is asked in three steps: the 276 is built in a transaction of its own (the patient's read
audited), sent with no transaction open under the connector's circuit breaker (the one submissions use),
and both files kept and the answer applied in another transaction under the claim's row lock. Every
inquiry is a ``claim_status_inquiry`` row whose ``next_inquiry_at`` keeps the claim from being asked
again within its payer's interval: the job is idempotent under at-least-once delivery (a redelivered
message finds the claim not due; two runners that both asked apply the first answer only). A payer that
does not answer (or whose circuit is open) leaves no row; the claim is asked again at the next run. Run by
the periodic job, the ``claims.status_inquiries`` actor (one practice) and ``rcm claims status-inquiries``."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, RequestInfo
from rcm.blobs.store import BlobStore
from rcm.claims import response_codes
from rcm.claims.building import CLAIM, open_billing_item
from rcm.claims.models import Claim
from rcm.claims.repository import ClaimRepository
from rcm.claims.states import Cause, ClaimState
from rcm.crypto.keyring import KeyStore
from rcm.eligibility import exchange
from rcm.eligibility.models import ClaimStatusInquiry, InquiryOutcome
from rcm.eligibility.repository import InquiryRepository
from rcm.identity.principal import Principal
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction
from rcm.interchanges.repository import X12FileLinkRepository
from rcm.kit.errors import NotFound, RCMError
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.patients.repository import CoverageRepository
from rcm.patients.service import load_patient
from rcm.payers.breaker import Breaker
from rcm.payers.models import Payer, PayerEnrollment
from rcm.payers.repository import EnrollmentRepository
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import SystemScope, TenantScope
from rcm.tenancy.staff import system_scope
from rcm.workqueue.models import BillingReason
from rcm.x12 import X12Error, transactions
from rcm.x12 import claim_status as x277
from rcm.x12.claim_status_request import ClaimQuery, ClaimStatusRequest, Requester, StatusInquiry, write_276
from rcm.x12.eligibility import Source
from rcm.x12.statuses import ClaimStatus

JOB = "claims.status_inquiries"
ASKED = (ClaimState.SUBMITTED, ClaimState.ACCEPTED)
_ACCEPTED = ("A0", "A1", "A2", "A5")
_REJECTED = ("A3", "A6", "A7", "A8")


async def due_inquiries(
    scope: SystemScope, *, now: datetime, limit: int = 1000
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(practice, claim) of payers with a status service, overdue for an answer (``due_for_follow_up``: no
    live billing item either) and not asked within their payer's interval."""
    due = await scope.repo(ClaimRepository).due_for_follow_up(limit=limit, electronic=True)
    asked = await scope.repo(InquiryRepository).not_due([claim for _, claim in due], now=now)
    return [(tenant, claim) for tenant, claim in due if claim not in asked]


def classify(data: bytes, trace: str) -> tuple[InquiryOutcome, ClaimStatus | None]:
    """The outcome of the payer's answer, and the claim status it gave (the one echoing our trace)."""
    try:
        for transaction in transactions(data):
            if transaction.kind == "999":
                return InquiryOutcome.REFUSED, None
            if transaction.kind != "277":
                continue
            found = list(x277.read(transaction).all_claims())
            status = next((c for c in found if c.tracking_number == trace), found[0] if found else None)
            return _outcome(status), status
    except X12Error:
        return InquiryOutcome.REFUSED, None
    return InquiryOutcome.NOT_FOUND, None


def _outcome(status: ClaimStatus | None) -> InquiryOutcome:
    category = _first_category(status)
    if category is None:
        return InquiryOutcome.NOT_FOUND
    if category in _ACCEPTED:
        return InquiryOutcome.ACCEPTED
    if category in _REJECTED:
        return InquiryOutcome.REJECTED
    if category.startswith("F"):
        return InquiryOutcome.FINALIZED
    if category.startswith("P"):
        return InquiryOutcome.PENDING
    return InquiryOutcome.NOT_FOUND  # A4 not found, E* errors, anything unknown: a person looks


def _first_category(status: ClaimStatus | None) -> str | None:
    codes = [code for found in (status.statuses if status else ()) for code in found.codes]
    return codes[0].category if codes else None


class Question(NamedTuple):
    """A 276 ready to send: built (and its reads audited) in one transaction, sent with none open, its
    answer recorded in another, so a payer that is slow holds no claim lock and no connection."""

    claim_id: uuid.UUID
    inquiry_id: uuid.UUID
    patient_id: uuid.UUID
    x12: bytes
    payer: Payer
    enrollment: PayerEnrollment


async def prepare(scope: TenantScope, claim_id: uuid.UUID, *, now: datetime) -> Question | None:
    """The 276 to ask about one claim; None when there is nothing to ask (the claim moved on, was asked
    already within its interval, or its practice is not enrolled with the payer). A payer with no electronic
    status service gets a follow-up item instead: a person asks."""
    claim = await scope.repo(ClaimRepository).get(claim_id)
    if claim is None or claim.state not in ASKED or claim.coverage_id is None:
        return None
    if await scope.repo(InquiryRepository).not_due([claim_id], now=now):
        return None
    found = await scope.repo(EnrollmentRepository).for_payer(claim.payer_id)
    if found is None:
        return None
    enrollment, payer = found
    if not payer.status_connector or not payer.status_endpoint:
        await open_billing_item(scope, claim_id, BillingReason.FOLLOW_UP, now=now)
        return None
    inquiry_id = uuid.uuid4()
    x12 = await _request(scope, claim, enrollment, payer, inquiry_id, now=now)
    return Question(claim_id, inquiry_id, claim.patient_id, x12, payer, enrollment)


async def ask(
    question: Question, *, secrets: SecretResolver, deadline_seconds: float, breaker: Breaker
) -> bytes:
    """The payer's answer to ``question`` through its status connector, under the connector's breaker."""
    assert question.payer.status_connector
    assert question.payer.status_endpoint
    return await exchange.call(
        question.x12,
        lambda connector, x12: connector.claim_status(x12),
        exchange.PayerLine(
            question.payer,
            question.enrollment,
            question.payer.status_connector,
            question.payer.status_endpoint,
            secrets,
            deadline_seconds,
            breaker,
        ),
    )


async def record(
    scope: TenantScope, question: Question, answer: bytes, *, store: BlobStore, now: datetime
) -> InquiryOutcome | None:
    """Keep both files and apply the answer under the claim's lock; None (files kept, nothing applied) when
    another run recorded an answer for this claim since the question was built (at-least-once delivery, or
    two runners: the payer was asked twice, a read, and the claim moves once)."""
    claim_id, inquiry_id, patients = question.claim_id, question.inquiry_id, [question.patient_id]
    connector = question.payer.status_connector or ""
    sent, _ = await files.keep(
        scope, store, question.x12, direction=Direction.OUTBOUND, connector=connector, patient_ids=patients
    )
    received, _ = await files.keep(
        scope, store, answer, direction=Direction.INBOUND, connector=connector, patient_ids=patients
    )
    links = scope.repo(X12FileLinkRepository)
    for kept in (sent, received):
        await links.link(kept.id, claim_ids=[claim_id])
    claim = await scope.repo(ClaimRepository).lock(claim_id)
    inquiries = scope.repo(InquiryRepository)
    if claim is None or claim.state not in ASKED or await inquiries.not_due([claim_id], now=now):
        return None
    outcome, status = classify(answer, inquiry_id.hex)
    await _apply(scope, claim, outcome, status, file_id=received.id, now=now)
    category = _first_category(status)
    code = status.statuses[0].codes[0].code if status and category else None
    await inquiries.insert(
        ClaimStatusInquiry(
            id=inquiry_id,
            claim_id=claim_id,
            outcome=outcome,
            category=category,
            status_code=code,
            next_inquiry_at=now + timedelta(days=question.payer.status_inquiry_days),
            request_file_id=sent.id,
            response_file_id=received.id,
        )
    )
    scope.audit(
        "claim.status_inquiry",
        Action.EXECUTE,
        resource_type=CLAIM,
        resource_ids=[claim_id, inquiry_id, sent.id, received.id],
        patient_ids=patients,
        detail={"outcome": outcome.value, "category": category},
    )
    return outcome


async def _request(
    scope: TenantScope,
    claim: Claim,
    enrollment: PayerEnrollment,
    payer: Payer,
    inquiry_id: uuid.UUID,
    *,
    now: datetime,
) -> bytes:
    """The 276 about ``claim``: the subscriber and, for a dependent, the patient (decrypted, audited), our
    patient control number, the payer's claim control number once known, the billed amount and the service
    date."""
    assert claim.coverage_id is not None
    coverage = await scope.repo(CoverageRepository).get(claim.coverage_id)
    if coverage is None:
        raise NotFound
    patient = await load_patient(scope, claim.patient_id)
    subscriber, dependent = exchange.members(scope, patient, coverage)
    scope.audit(
        "coverage.read",
        Action.READ,
        resource_type="coverage",
        resource_ids=[coverage.id],
        patient_ids=[claim.patient_id],
        detail={"purpose": "claim_status_276"},
    )
    request = ClaimStatusRequest(
        envelope=await exchange.envelope(scope, enrollment, now=now),
        reference=inquiry_id.hex,
        source=Source(name=payer.name, payer_id=payer.id),
        requester=Requester(name=scope.manifest.billing_provider.name, identifier=enrollment.submitter_id),
        provider=exchange.billing_provider(scope),
        inquiries=(
            StatusInquiry(
                subscriber=subscriber,
                dependent=dependent,
                claims=(
                    ClaimQuery(
                        trace_number=inquiry_id.hex,
                        patient_control_number=claim.patient_control_number,
                        payer_claim_control_number=claim.payer_claim_control_number,
                        total_charge=claim.total_charge_cents,
                        service_start=claim.service_date,
                    ),
                ),
            ),
        ),
    )
    return write_276(request).encode()


async def _apply(
    scope: TenantScope,
    claim: Claim,
    outcome: InquiryOutcome,
    status: ClaimStatus | None,
    *,
    file_id: uuid.UUID,
    now: datetime,
) -> None:
    claims = scope.repo(ClaimRepository)
    reason = response_codes.status_text(status.statuses, kind="277") if status and status.statuses else None
    control = status.payer_claim_control_number if status else None
    if outcome in (InquiryOutcome.ACCEPTED, InquiryOutcome.FINALIZED):
        if claim.state is ClaimState.SUBMITTED:
            await claims.transition(
                claim.id,
                expected=ClaimState.SUBMITTED,
                to=ClaimState.ACCEPTED,
                cause=Cause.STATUS,
                actor=None,
                reason=reason,
                payer_claim_control_number=control,
                x12_file_id=file_id,
            )
    elif outcome is InquiryOutcome.REJECTED:
        await claims.transition(
            claim.id,
            expected=claim.state,
            to=ClaimState.REJECTED,
            cause=Cause.STATUS,
            actor=None,
            reason=reason,
            x12_file_id=file_id,
        )
        await open_billing_item(scope, claim.id, BillingReason.REJECTION, now=now)
    elif outcome in (InquiryOutcome.NOT_FOUND, InquiryOutcome.REFUSED):
        await open_billing_item(scope, claim.id, BillingReason.FOLLOW_UP, now=now)


async def run_status_inquiries(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    *,
    tenant_ids: Sequence[TenantId],
    store: BlobStore,
    secrets: SecretResolver,
    deadline_seconds: float,
    breaker: Breaker,
    actor: Principal,
    request: RequestInfo,
    now: datetime | None = None,
    limit: int = 1000,
) -> Counter[str]:
    """Every due claim of ``tenant_ids``, each asked in a transaction of its own (one payer that does not
    answer costs only its own claims). Returns how many of each outcome ("unanswered": the payer or its
    connector failed; asked again at the next run)."""
    now = now or datetime.now(UTC)
    if not tenant_ids:
        return Counter()
    async with system_scope(
        sessions, keystore, job=JOB, tenant_ids=tuple(tenant_ids), actor=actor, request=request
    ) as scope:
        due = await due_inquiries(scope, now=now, limit=limit)
    counts: Counter[str] = Counter()
    for practice, claim_id in due:
        tenant_id = TenantId(practice)
        try:
            async with job_tenant_scope(
                sessions, keystore, tenant_id, actor=actor, request=request, job=JOB
            ) as tenant:
                question = await prepare(tenant, claim_id, now=now)
            if question is None:
                counts["skipped"] += 1
                continue
            answer = await ask(question, secrets=secrets, deadline_seconds=deadline_seconds, breaker=breaker)
            async with job_tenant_scope(
                sessions, keystore, tenant_id, actor=actor, request=request, job=JOB
            ) as tenant:
                outcome = await record(tenant, question, answer, store=store, now=now)
        except RCMError:
            counts["unanswered"] += 1
            continue
        counts[outcome.value if outcome else "skipped"] += 1
    return counts
