"""QA: supervisors sample completed work; a reviewer (a coder or supervisor marked ``qa_reviewer`` on their
assignment to the practice) re-codes each sample blind, and agreement is scored per coder.

Blind: the reviewer sees the documentation and the practice's own codes, as the coder did, never the
coding under review; and nobody reviews their own work. Agreement is counted at two levels: diagnoses (the
ICD-10-CM codes both gave, over the codes either gave) and procedures (lines matched by code and modifiers,
likewise); a period's figure sums the counts of its samples, so a sample with many codes weighs more.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from rcm.audit.events import Action
from rcm.coding import schemas
from rcm.coding.models import CodingDiagnosis, CodingLine, QaSample, SampleStatus, VersionState
from rcm.coding.repository import CodingRepository
from rcm.coding.service import check_structure, save_version
from rcm.crypto.fields import unseal
from rcm.encounters.repository import EncounterRepository
from rcm.kit.errors import Conflict, Forbidden, NotFound
from rcm.tenancy.repository import assignment_of
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import one_practice
from rcm.workqueue.models import WorkItem
from rcm.workqueue.repository import WorkItemRepository

QA_SAMPLE = "qa_sample"


def _ratio(agreed: int | None, total: int | None) -> float | None:
    if agreed is None or not total:
        return None
    return round(agreed / total, 4)


def sample_view(sample: QaSample) -> schemas.Sample:
    return schemas.Sample(
        id=sample.id,
        tenant_id=sample.tenant_id,
        work_item_id=sample.work_item_id,
        encounter_id=sample.encounter_id,
        coder=sample.coder,
        status=sample.status,
        created_at=sample.created_at,
        reviewer=sample.reviewer,
        reviewed_at=sample.reviewed_at,
        dx_agreement=_ratio(sample.dx_agreed, sample.dx_total),
        px_agreement=_ratio(sample.px_agreed, sample.px_total),
    )


def agreement(
    original: tuple[Sequence[CodingDiagnosis], Sequence[CodingLine]],
    review: tuple[Sequence[CodingDiagnosis], Sequence[CodingLine]],
) -> dict[str, int]:
    """The counts behind the scores: intersection and union, for diagnoses and for procedure lines."""
    dx_a = {d.code for d in original[0]}
    dx_b = {d.code for d in review[0]}
    px_a = {(line.procedure_code, tuple(sorted(line.modifiers))) for line in original[1]}
    px_b = {(line.procedure_code, tuple(sorted(line.modifiers))) for line in review[1]}
    return {
        "dx_agreed": len(dx_a & dx_b),
        "dx_total": len(dx_a | dx_b),
        "px_agreed": len(px_a & px_b),
        "px_total": len(px_a | px_b),
    }


async def draw(scope: StaffScope, practice: TenantScope, data: schemas.SampleCreate) -> schemas.Samples:
    """Sample up to ``count`` completed codings of the practice not sampled before (at random among the
    most recent), optionally of one coder; a supervisor's own work is never in their sample."""
    coding = practice.repo(CodingRepository)
    versions = await coding.sample_candidates(
        limit=data.count, coder=data.coder, exclude=scope.principal.subject
    )
    samples = [
        QaSample(
            id=uuid.uuid4(),
            work_item_id=v.work_item_id,
            encounter_id=v.encounter_id,
            original_version_id=v.id,
            coder=v.coder,
            sampled_by=scope.principal.subject,
            status=SampleStatus.OPEN,
        )
        for v in versions
    ]
    if samples:
        await coding.insert(*samples)
    practice.audit("qa.sample", Action.CREATE, resource_type=QA_SAMPLE, resource_ids=[s.id for s in samples])
    return schemas.Samples(samples=[sample_view(s) for s in samples])


async def reviewer_practice(scope: StaffScope, sample_id: uuid.UUID) -> tuple[QaSample, TenantScope]:
    """The sample (404 outside the caller's practices) if the caller reviews that practice's QA samples."""
    found = await scope.repo(CodingRepository).sample(sample_id)
    if found is None:
        raise NotFound
    await _require_reviewer(scope, found.tenant_id)
    if found.coder == scope.principal.subject:
        raise Forbidden("Nobody reviews their own coding.")
    return found, await one_practice(scope, found.tenant_id)


async def _require_reviewer(scope: StaffScope, tenant_id: uuid.UUID) -> None:
    user_id = scope.principal.user_id
    assignment = await assignment_of(scope.session, tenant_id, user_id) if user_id else None
    if assignment is None or not assignment.qa_reviewer:
        raise Forbidden("You are not a QA reviewer of this practice.")


async def open_samples(scope: StaffScope, *, limit: int) -> schemas.Samples:
    """Open samples of the practices the caller reviews (their own work left out)."""
    samples = [
        s
        for s in await scope.repo(CodingRepository).open_samples(limit=limit)
        if s.coder != scope.principal.subject
    ]
    reviewed: list[QaSample] = []
    allowed: dict[uuid.UUID, bool] = {}
    for sample in samples:
        if sample.tenant_id not in allowed:
            user_id = scope.principal.user_id
            assignment = await assignment_of(scope.session, sample.tenant_id, user_id) if user_id else None
            allowed[sample.tenant_id] = bool(assignment and assignment.qa_reviewer)
        if allowed[sample.tenant_id]:
            reviewed.append(sample)
    return schemas.Samples(samples=[sample_view(s) for s in reviewed])


async def review_task(scope: StaffScope, sample_id: uuid.UUID) -> schemas.ReviewTask:
    """What the reviewer codes from: the documentation, not the coding under review."""
    sample, practice = await reviewer_practice(scope, sample_id)
    encounter = await practice.repo(EncounterRepository).get_or_404(sample.encounter_id)
    practice.audit(
        "qa.review.read",
        Action.READ,
        resource_type=QA_SAMPLE,
        resource_ids=[sample.id, encounter.id],
        patient_ids=[encounter.patient_id],
    )
    return schemas.ReviewTask(
        id=sample.id,
        tenant_id=sample.tenant_id,
        encounter_id=encounter.id,
        patient_id=encounter.patient_id,
        service_date=encounter.service_date,
        place_of_service=encounter.place_of_service,
        documentation=unseal(practice.keyring, encounter)["documentation"],
    )


async def review(scope: StaffScope, sample_id: uuid.UUID, data: schemas.CodingCreate) -> schemas.Sample:
    """Record the reviewer's blind coding and score it against the original."""
    sample, practice = await reviewer_practice(scope, sample_id)
    if sample.status is not SampleStatus.OPEN:
        raise Conflict("This sample has been reviewed already.")
    check_structure(data, final=True)
    item: WorkItem = await practice.repo(WorkItemRepository).get_or_404(sample.work_item_id)
    coding = practice.repo(CodingRepository)
    mine = await save_version(practice, item, data, VersionState.REVIEW)
    scores = agreement(await coding.rows(sample.original_version_id), await coding.rows(mine.id))
    done = await coding.reviewed(
        sample.id, reviewer=scope.principal.subject, version_id=mine.id, scores=scores
    )
    if done is None:
        raise Conflict("This sample has been reviewed already.")
    practice.audit(
        "qa.review",
        Action.CREATE,
        resource_type=QA_SAMPLE,
        resource_ids=[sample.id, mine.id],
        detail=dict(scores),
    )
    return sample_view(done)


async def agreement_report(
    scope: StaffScope, *, since: datetime, until: datetime, period: str
) -> schemas.AgreementReport:
    rows = await scope.repo(CodingRepository).agreement(since=since, until=until, period=period)
    scope.audit("qa.agreement", Action.READ, resource_type=QA_SAMPLE, detail={"period": period})
    return schemas.AgreementReport(
        rows=[
            schemas.Agreement(
                coder=row.coder,
                period=row.period,
                samples=row.samples,
                dx_agreement=_ratio(row.dx_agreed, row.dx_total),
                px_agreement=_ratio(row.px_agreed, row.px_total),
            )
            for row in rows
        ]
    )
