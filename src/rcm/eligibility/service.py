"""Eligibility checks: a 270 built from a patient's coverage, asked of the payer in the request (real time,
under the connector deadline), the 270 and the payer's answer kept encrypted, the 271 read into a stored
result.

Real time, not a job: staff and practices check while the patient is at the desk, and the answer is what
they asked for. A payer that does not answer in time is a 503, a connector that refuses is a 502 (both
PHI-free); nothing is stored then, and the same Idempotency-Key may be retried."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from rcm.audit.events import Action
from rcm.blobs.store import BlobStore
from rcm.eligibility import exchange
from rcm.eligibility.models import CheckStatus, EligibilityBenefit, EligibilityCheck
from rcm.eligibility.reading import read_answer
from rcm.eligibility.repository import EligibilityRepository
from rcm.eligibility.schemas import Benefit, EligibilityCheckCreate
from rcm.eligibility.schemas import EligibilityCheck as CheckView
from rcm.kit.errors import Conflict, FieldError, NotFound
from rcm.kit.secrets import SecretResolver
from rcm.patients.models import Coverage
from rcm.patients.repository import CoverageRepository
from rcm.patients.service import load_patient
from rcm.payers.breaker import Breaker
from rcm.payers.repository import EnrollmentRepository
from rcm.tenancy.scope import TenantScope
from rcm.x12.eligibility import EligibilityRequest, Inquiry, Source, write_270

ELIGIBILITY_CHECK = "eligibility_check"
COVERAGE = "coverage"


async def _coverage(scope: TenantScope, patient_id: uuid.UUID, coverage_id: uuid.UUID) -> Coverage:
    await load_patient(scope, patient_id)
    coverage = await scope.repo(CoverageRepository).get(coverage_id)
    if coverage is None or coverage.patient_id != patient_id:
        raise NotFound
    return coverage


async def check_eligibility(
    scope: TenantScope,
    patient_id: uuid.UUID,
    coverage_id: uuid.UUID,
    data: EligibilityCheckCreate,
    *,
    store: BlobStore,
    secrets: SecretResolver,
    deadline_seconds: float,
    breaker: Breaker,
    now: datetime | None = None,
) -> CheckView:
    now = now or datetime.now(UTC)
    coverage = await _coverage(scope, patient_id, coverage_id)
    found = await scope.repo(EnrollmentRepository).for_payer(coverage.payer_id)
    if found is None:
        raise Conflict(
            "The practice is not enrolled with this coverage's payer.",
            errors=[FieldError("/payer_id", "has no enrollment in the practice's manifest")],
        )
    enrollment, payer = found
    if not payer.eligibility_connector or not payer.eligibility_endpoint:
        raise Conflict(
            "This coverage's payer offers no electronic eligibility inquiry.",
            errors=[FieldError("/payer_id", "has no eligibility connector in the payer directory")],
        )
    patient = await load_patient(scope, patient_id)
    subscriber, dependent = exchange.members(scope, patient, coverage)
    scope.audit(
        "coverage.read",
        Action.READ,
        resource_type=COVERAGE,
        resource_ids=[coverage.id],
        patient_ids=[patient_id],
        detail={"purpose": "eligibility_270"},
    )
    check_id = uuid.uuid4()
    envelope = await exchange.envelope(scope, enrollment, now=now)
    request = EligibilityRequest(
        envelope=envelope,
        reference=check_id.hex,
        # TRN03: "9" and nine digits we assign (the interchange number: unique per sender).
        trace_originator=f"9{envelope.interchange_control_number:09d}",
        source=Source(name=payer.name, payer_id=payer.id),
        receiver=exchange.billing_provider(scope),
        inquiries=(
            Inquiry(
                trace_number=check_id.hex,
                subscriber=subscriber,
                dependent=dependent,
                service_types=tuple(data.service_types),
                service_date=data.service_date,
            ),
        ),
    )
    sent, answer, received = await exchange.ask(
        scope,
        store,
        write_270(request).encode(),
        lambda connector, x12: connector.check_eligibility(x12),
        exchange.PayerLine(
            payer,
            enrollment,
            payer.eligibility_connector,
            payer.eligibility_endpoint,
            secrets,
            deadline_seconds,
            breaker,
        ),
        patient_ids=[patient_id],
    )
    result = read_answer(answer)
    check = EligibilityCheck(
        id=check_id,
        patient_id=patient_id,
        coverage_id=coverage.id,
        payer_id=payer.id,
        checked_at=now,
        status=result.status,
        service_types=list(data.service_types),
        plan_begin=result.plan_begin,
        plan_end=result.plan_end,
        reject_reason=result.reject_reason,
        reject_text=result.reject_text,
        request_file_id=sent.id,
        response_file_id=received.id,
    )
    benefits = [
        EligibilityBenefit(
            id=uuid.uuid4(),
            check_id=check_id,
            service_type=row.service_type,
            network=row.network,
            copay_cents=row.copay_cents,
            coinsurance_basis_points=row.coinsurance_basis_points,
            deductible_cents=row.deductible_cents,
            deductible_remaining_cents=row.deductible_remaining_cents,
        )
        for row in result.benefits
    ]
    await scope.repo(EligibilityRepository).insert(check, *benefits)
    scope.audit(
        "eligibility_check.create",
        Action.CREATE,
        resource_type=ELIGIBILITY_CHECK,
        resource_ids=[check_id, coverage.id, sent.id, received.id],
        patient_ids=[patient_id],
        detail={"status": result.status.value, "payer": payer.id},
    )
    return _view(check, benefits)


async def list_checks(scope: TenantScope, patient_id: uuid.UUID, coverage_id: uuid.UUID) -> list[CheckView]:
    await _coverage(scope, patient_id, coverage_id)
    repo = scope.repo(EligibilityRepository)
    checks = await repo.for_coverage(coverage_id)
    benefits = await repo.benefits_of([c.id for c in checks]) if checks else []
    scope.audit(
        "eligibility_check.search",
        Action.READ,
        resource_type=ELIGIBILITY_CHECK,
        resource_ids=[c.id for c in checks],
        patient_ids=[patient_id],
    )
    return [_view(c, [b for b in benefits if b.check_id == c.id]) for c in checks]


async def get_check(
    scope: TenantScope,
    check_id: uuid.UUID,
    *,
    patient_id: uuid.UUID | None = None,
    coverage_id: uuid.UUID | None = None,
) -> CheckView:
    """One check; under a patient's coverage when the path names them (a check of another coverage is
    not found there), or by its id alone (what a billing item about an inactive coverage names)."""
    if patient_id is not None and coverage_id is not None:
        await _coverage(scope, patient_id, coverage_id)
    repo = scope.repo(EligibilityRepository)
    check = await repo.get(check_id)
    if check is None or (coverage_id is not None and check.coverage_id != coverage_id):
        raise NotFound
    scope.audit(
        "eligibility_check.read",
        Action.READ,
        resource_type=ELIGIBILITY_CHECK,
        resource_ids=[check.id, check.coverage_id],
        patient_ids=[check.patient_id],
    )
    return _view(check, await repo.benefits_of([check.id]))


def _view(check: EligibilityCheck, benefits: list[EligibilityBenefit]) -> CheckView:
    return CheckView(
        id=check.id,
        patient_id=check.patient_id,
        coverage_id=check.coverage_id,
        payer_id=check.payer_id,
        checked_at=check.checked_at,
        status=CheckStatus(check.status),
        service_types=list(check.service_types),
        plan_begin=check.plan_begin,
        plan_end=check.plan_end,
        reject_reason=check.reject_reason,
        reject_text=check.reject_text,
        request_file_id=check.request_file_id,
        response_file_id=check.response_file_id,
        benefits=[
            Benefit(
                service_type=b.service_type,
                network=b.network,
                copay_cents=b.copay_cents,
                coinsurance_basis_points=b.coinsurance_basis_points,
                deductible_cents=b.deductible_cents,
                deductible_remaining_cents=b.deductible_remaining_cents,
            )
            for b in sorted(benefits, key=lambda b: (b.service_type, b.network))
        ],
    )
