"""Working denials: the practice's list (closest appeal deadline first, with the clock), appeals (letter
rendered from the practice's template into a PDF kept as an encrypted blob, attachments, submission,
outcome), the letter templates, a replacement claim marking its original's denials corrected, and the
denial analytics. Services never commit; every PHI access is audited in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime

from rcm.audit.events import Action
from rcm.blobs.store import BlobStore
from rcm.claims.models import Claim, ClaimLine
from rcm.claims.repository import BillingQueueRepository, ClaimRepository
from rcm.claims.service import move
from rcm.claims.states import Cause, ClaimState, allowed
from rcm.crypto.fields import seal
from rcm.denials import letters, schemas
from rcm.denials.models import (
    Appeal,
    AppealAttachment,
    AppealOutcome,
    AppealStatus,
    AppealTemplate,
    Denial,
    DenialStatus,
)
from rcm.denials.repository import (
    GROUPS,
    AppealAttachmentRepository,
    AppealRepository,
    AppealTemplateRepository,
    DenialRepository,
)
from rcm.encounters.documents import DocumentType, stored_file
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rcm.patients import service as patients
from rcm.patients.repository import CoverageRepository, PatientRepository
from rcm.payers.repository import directory_payers
from rcm.tenancy.scope import TenantScope

DENIAL = "denial"
APPEAL = "appeal"
APPEAL_TEMPLATE = "appeal_template"
LETTER_TYPE = "application/pdf"
_OUTCOME_STATUS = {
    AppealOutcome.OVERTURNED: DenialStatus.OVERTURNED,
    AppealOutcome.UPHELD: DenialStatus.UPHELD,
    AppealOutcome.PARTIAL: DenialStatus.PARTIAL,
}


def _money(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}" if cents >= 0 else f"-{_money(-cents)}"


def denial_view(row: Denial, *, today: date | None = None) -> schemas.Denial:
    today = today or datetime.now(UTC).date()
    return schemas.Denial(
        id=row.id,
        claim_id=row.claim_id,
        payer_id=row.payer_id,
        line_number=row.line_number,
        procedure_code=row.procedure_code,
        group_code=row.group_code,
        carc=row.carc,
        adjustments=list(row.adjustments),
        rarcs=list(row.rarcs),
        category=row.category,
        denied_cents=row.denied_cents,
        remitted_on=row.remitted_on,
        appeal_deadline=row.appeal_deadline,
        days_left=(row.appeal_deadline - today).days,
        status=row.status,
        appeal_id=row.appeal_id,
        replacement_claim_id=row.replacement_claim_id,
        created_at=row.created_at,
    )


async def list_denials(
    scope: TenantScope, *, status: DenialStatus | None, claim_id: uuid.UUID | None, limit: int
) -> list[schemas.Denial]:
    """The practice's denials, the closest appeal deadline first (codes and amounts: no PHI)."""
    rows = await scope.repo(DenialRepository).listed(status=status, claim_id=claim_id, limit=limit)
    scope.audit(
        "denial.search",
        Action.READ,
        resource_type=DENIAL,
        resource_ids=[r.id for r in rows],
        detail={"count": len(rows)},
    )
    return [denial_view(r) for r in rows]


# Appeals ------------------------------------------------------------------------------------------------


async def _template_body(scope: TenantScope, name: str) -> str:
    row = await scope.repo(AppealTemplateRepository).named(name)
    if row is not None:
        return row.body
    if name == letters.DEFAULT_TEMPLATE_NAME:
        return letters.DEFAULT_TEMPLATE
    raise InvalidInput(
        "No such appeal template.", errors=[FieldError("/template", "names no template of the practice")]
    )


async def _context(
    scope: TenantScope, claim: Claim, denials: Sequence[Denial], argument: str
) -> dict[str, object]:
    """What a letter template sees: plain values only (the sandbox has nothing to reach through)."""
    patient_row = await scope.repo(PatientRepository).get_or_404(claim.patient_id)
    (patient,) = patients.patient_views(scope.keyring, [patient_row])
    member_id = ""
    if claim.coverage_id is not None:
        coverage_row = await scope.repo(CoverageRepository).get(claim.coverage_id)
        if coverage_row is not None:
            member_id = patients.coverage_view(scope.keyring, coverage_row).member_id
    lines: list[ClaimLine] = await scope.repo(ClaimRepository).lines(claim.id)
    payer = (await directory_payers(scope.session, [claim.payer_id])).get(claim.payer_id)
    deadline = min((d.appeal_deadline for d in denials), default=None)
    return {
        "practice": {"name": scope.manifest.name, "npi": scope.manifest.billing_provider.npi},
        "payer": {"id": claim.payer_id, "name": payer.name if payer is not None else claim.payer_id},
        "patient": {
            "name": f"{patient.given_name} {patient.family_name}",
            "given_name": patient.given_name,
            "family_name": patient.family_name,
            "birth_date": patient.birth_date.isoformat(),
            "member_id": member_id,
        },
        "claim": {
            "patient_control_number": claim.patient_control_number,
            "payer_claim_control_number": claim.payer_claim_control_number or "",
            "service_date": claim.service_date.isoformat(),
            "total_charge": _money(claim.total_charge_cents),
            "lines": [
                {
                    "line_number": line.line_number,
                    "procedure_code": line.procedure_code,
                    "modifiers": list(line.modifiers),
                    "units": line.units,
                    "charge": _money(line.charge_cents),
                }
                for line in lines
            ],
        },
        "denials": [
            {
                "line_number": d.line_number,
                "procedure_code": d.procedure_code or "",
                "group_code": d.group_code or "",
                "carc": d.carc or "",
                "adjustments": list(d.adjustments),
                "rarcs": list(d.rarcs),
                "category": d.category.value.replace("_", " "),
                "denied": _money(d.denied_cents),
            }
            for d in denials
        ],
        "argument": argument,
        "today": datetime.now(UTC).date().isoformat(),
        "deadline": deadline.isoformat() if deadline is not None else "",
    }


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def appeal_view(scope: TenantScope, row: Appeal) -> schemas.Appeal:
    denials = await scope.repo(DenialRepository).of_appeal(row.id)
    attachments = await scope.repo(AppealAttachmentRepository).of_appeal(row.id)
    return schemas.Appeal(
        id=row.id,
        claim_id=row.claim_id,
        template=row.template_name,
        status=row.status,
        denial_ids=[d.id for d in denials],
        attachments=[
            schemas.Attachment(
                id=a.id,
                content_type=a.content_type,
                size=a.size,
                sha256=a.sha256.hex(),
                created_at=a.created_at,
            )
            for a in attachments
        ],
        submitted_on=row.submitted_on,
        submission_method=row.submission_method,
        submission_reference=row.submission_reference,
        outcome=row.outcome,
        recovered_cents=row.recovered_cents,
        decided_on=row.decided_on,
        created_at=row.created_at,
    )


async def create_appeal(
    scope: TenantScope, store: BlobStore, data: schemas.AppealCreate
) -> tuple[int, schemas.Appeal]:
    """An appeal of the claim's open denials: the letter rendered (422 naming the template's line on a
    template error) and kept as an encrypted PDF, the argument sealed. 409 when nothing is open to appeal."""
    claim = await scope.repo(ClaimRepository).get(data.claim_id)
    if claim is None:
        raise NotFound
    denials = await scope.repo(DenialRepository).of_claim(claim.id, statuses=[DenialStatus.OPEN])
    if not denials:
        raise Conflict(
            "The claim has no open denial to appeal.",
            errors=[FieldError("/claim_id", "has no open denial")],
        )
    template = data.template or letters.DEFAULT_TEMPLATE_NAME
    body = await _template_body(scope, template)
    text = letters.render_text(body, await _context(scope, claim, denials, data.argument))
    ref = await store.put(scope, _one_chunk(letters.render_pdf(text)), content_type=LETTER_TYPE)
    appeal_id = uuid.uuid4()
    row = Appeal(
        id=appeal_id,
        claim_id=claim.id,
        template_name=template,
        letter_blob_id=ref.id,
        created_by=scope.principal.subject,
        status=AppealStatus.DRAFTED,
        **seal(scope.keyring, Appeal, appeal_id, {"argument": data.argument}),
    )
    await scope.repo(AppealRepository).insert(row)
    await scope.repo(DenialRepository).set_status(
        [d.id for d in denials], DenialStatus.OPEN, appeal_id=appeal_id
    )
    scope.audit(
        "appeal.create",
        Action.CREATE,
        resource_type=APPEAL,
        resource_ids=[appeal_id, claim.id],
        patient_ids=[claim.patient_id],
        detail={"denials": len(denials), "template": template},
    )
    return 201, await appeal_view(scope, row)


async def _appeal_and_claim(
    scope: TenantScope, appeal_id: uuid.UUID, *, lock: bool = False
) -> tuple[Appeal, Claim]:
    repo = scope.repo(AppealRepository)
    row = await (repo.locked(appeal_id) if lock else repo.get(appeal_id))
    if row is None:
        raise NotFound
    claim = await scope.repo(ClaimRepository).get_or_404(row.claim_id)
    return row, claim


async def read_appeal(scope: TenantScope, appeal_id: uuid.UUID) -> schemas.Appeal:
    row, claim = await _appeal_and_claim(scope, appeal_id)
    scope.audit("appeal.read", Action.READ, resource_type=APPEAL, resource_ids=[row.id, claim.id])
    return await appeal_view(scope, row)


async def letter(scope: TenantScope, store: BlobStore, appeal_id: uuid.UUID) -> bytes:
    """The appeal letter's PDF; the read is audited as an access to the patient's PHI it holds."""
    row, claim = await _appeal_and_claim(scope, appeal_id)
    scope.audit(
        "appeal.letter.read",
        Action.READ,
        resource_type=APPEAL,
        resource_ids=[row.id, claim.id],
        patient_ids=[claim.patient_id],
    )
    return await store.read_all(scope, row.letter_blob_id)


async def check_appeal(scope: TenantScope, appeal_id: uuid.UUID) -> None:
    """404 before an upload is read."""
    await _appeal_and_claim(scope, appeal_id)


async def attach(
    scope: TenantScope, store: BlobStore, appeal_id: uuid.UUID, *, blob_id: uuid.UUID, kind: DocumentType
) -> tuple[int, schemas.Attachment]:
    row, claim = await _appeal_and_claim(scope, appeal_id)
    if row.status is not AppealStatus.DRAFTED:
        raise Conflict(
            "Files are attached before the appeal is submitted.",
            errors=[FieldError("/status", f"is {row.status.value}")],
        )
    attachment = AppealAttachment(
        id=uuid.uuid4(), appeal_id=row.id, **await stored_file(scope, store, blob_id, kind)
    )
    await scope.repo(AppealAttachmentRepository).insert(attachment)
    scope.audit(
        "appeal.attachment.create",
        Action.CREATE,
        resource_type=APPEAL,
        resource_ids=[attachment.id, row.id],
        patient_ids=[claim.patient_id],
    )
    return 201, schemas.Attachment(
        id=attachment.id,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256.hex(),
        created_at=attachment.created_at or datetime.now(UTC),
    )


async def submit_appeal(
    scope: TenantScope, appeal_id: uuid.UUID, data: schemas.AppealSubmission
) -> schemas.Appeal:
    """Record how and when the appeal went to the payer: its denials become ``appealed``, the claim
    ``appealed`` (when the state machine allows it) and the claim's denial item is done."""
    row, claim = await _appeal_and_claim(scope, appeal_id, lock=True)
    if row.status is not AppealStatus.DRAFTED:
        raise Conflict(
            "The appeal was submitted already.", errors=[FieldError("/status", f"is {row.status.value}")]
        )
    row.status = AppealStatus.SUBMITTED
    row.submitted_on = data.submitted_on
    row.submission_method = data.method
    row.submission_reference = data.reference
    denials = await scope.repo(DenialRepository).of_appeal(row.id)
    await scope.repo(DenialRepository).set_status([d.id for d in denials], DenialStatus.APPEALED)
    if allowed(claim.state, ClaimState.APPEALED):
        await move(
            scope, claim.id, ClaimState.APPEALED, cause=Cause.BILLER, reason=f"appeal {data.method.value}"
        )
    await scope.repo(BillingQueueRepository).complete_about(claim.id, actor=scope.principal.subject)
    await scope.session.flush()
    scope.audit(
        "appeal.submit",
        Action.UPDATE,
        resource_type=APPEAL,
        resource_ids=[row.id, claim.id],
        patient_ids=[claim.patient_id],
        detail={"method": data.method.value},
    )
    return await appeal_view(scope, row)


async def decide_appeal(
    scope: TenantScope, appeal_id: uuid.UUID, data: schemas.AppealDecision
) -> schemas.Appeal:
    """The payer's answer: overturned, upheld or partial, with the amount recovered (the money itself
    arrives, and is posted, with the payer's next 835)."""
    row, claim = await _appeal_and_claim(scope, appeal_id, lock=True)
    if row.status is not AppealStatus.SUBMITTED:
        raise Conflict(
            "Only a submitted appeal gets an outcome.",
            errors=[FieldError("/status", f"is {row.status.value}")],
        )
    if data.outcome is AppealOutcome.UPHELD and data.recovered_cents:
        raise InvalidInput(
            "An upheld denial recovers nothing.",
            errors=[FieldError("/recovered_cents", "must be 0 when upheld")],
        )
    row.status = AppealStatus.DECIDED
    row.outcome = data.outcome
    row.recovered_cents = data.recovered_cents
    row.decided_on = data.decided_on
    denials = await scope.repo(DenialRepository).of_appeal(row.id)
    await scope.repo(DenialRepository).set_status([d.id for d in denials], _OUTCOME_STATUS[data.outcome])
    await scope.session.flush()
    scope.audit(
        "appeal.decide",
        Action.UPDATE,
        resource_type=APPEAL,
        resource_ids=[row.id, claim.id],
        detail={"outcome": data.outcome.value},
    )
    return await appeal_view(scope, row)


# Templates ----------------------------------------------------------------------------------------------


def _template_view(row: AppealTemplate) -> schemas.Template:
    return schemas.Template(name=row.name, body=row.body, built_in=False, updated_at=row.updated_at)


_BUILT_IN = schemas.Template(
    name=letters.DEFAULT_TEMPLATE_NAME, body=letters.DEFAULT_TEMPLATE, built_in=True, updated_at=None
)


async def list_templates(scope: TenantScope) -> list[schemas.Template]:
    rows = await scope.repo(AppealTemplateRepository).listed()
    views = [_template_view(r) for r in rows]
    if not any(r.name == letters.DEFAULT_TEMPLATE_NAME for r in rows):
        views.insert(0, _BUILT_IN)
    return views


async def read_template(scope: TenantScope, name: str) -> schemas.Template:
    row = await scope.repo(AppealTemplateRepository).named(name)
    if row is not None:
        return _template_view(row)
    if name == letters.DEFAULT_TEMPLATE_NAME:
        return _BUILT_IN
    raise NotFound


async def save_template(scope: TenantScope, name: str, data: schemas.TemplateWrite) -> schemas.Template:
    """Create or replace the practice's template ``name``: it must compile and render against a sample
    claim in the sandbox, else 422 naming the line."""
    letters.check_template(data.body)
    repo = scope.repo(AppealTemplateRepository)
    row = await repo.named(name)
    if row is None:
        row = AppealTemplate(id=uuid.uuid4(), name=name, body=data.body)
        await repo.insert(row)
    else:
        row.body = data.body
        row.updated_at = datetime.now(UTC)
    await scope.session.flush()
    scope.audit("appeal_template.save", Action.UPDATE, resource_type=APPEAL_TEMPLATE, resource_ids=[row.id])
    return _template_view(row)


# Analytics ----------------------------------------------------------------------------------------------


def parse_groups(value: str | None) -> list[str]:
    groups = [g.strip() for g in (value or "").split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or len(set(groups)) != len(groups):
        raise InvalidInput(
            "group_by lists payer, cpt, carc and category, each at most once.",
            errors=[FieldError("/group_by", f"{', '.join(unknown) or 'a repeated name'} is not a grouping")],
        )
    return groups


async def report(
    scope: TenantScope,
    *,
    group_by: list[str],
    period: schemas.Period,
    since: date | None,
    until: date | None,
) -> schemas.DenialReport:
    """Counts and denied amounts per period (of the remittance date) and per payer x CPT x CARC x
    category, as asked. Aggregates of codes and amounts: no PHI."""
    rows = await scope.repo(DenialRepository).totals(group_by, period=period.value, since=since, until=until)
    totals = []
    for r in rows:
        values = r._mapping
        totals.append(
            schemas.DenialTotals(
                period=values["period"],
                count=int(values["count"]),
                denied_cents=int(values["cents"] or 0),
                payer=values.get("payer"),
                cpt=values.get("cpt"),
                carc=values.get("carc"),
                category=values.get("category"),
            )
        )
    scope.audit(
        "report.denials",
        Action.READ,
        resource_type="report",
        detail={"group_by": ",".join(group_by), "period": period.value},
    )
    return schemas.DenialReport(group_by=group_by, period=period, since=since, until=until, rows=totals)
