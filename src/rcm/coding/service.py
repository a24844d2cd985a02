"""A coder's work on coding items: the next item, what it holds, drafts, completion, release, queries; and
the practice's answers to queries. Services never commit: the request boundary does.

Every step is an event on the work item (``rcm.workqueue``) and an audit event in the item's practice's
trail, in the same transaction. Documentation and queries are PHI: decrypted only here, audited as reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, RequestInfo
from rcm.codes.models import CodeSystem
from rcm.coding import codecheck, schemas
from rcm.coding.models import (
    CodingDiagnosis,
    CodingLine,
    CodingQuery,
    CodingVersion,
    QueryStatus,
    VersionState,
)
from rcm.coding.repository import CodingRepository, EncounterStatusRepository, FeeScheduleRepository
from rcm.crypto.fields import seal, unseal
from rcm.crypto.keyring import KeyStore
from rcm.encounters.models import Encounter
from rcm.encounters.repository import EncounterRepository
from rcm.identity.principal import Principal, Role
from rcm.kit.errors import Conflict, FieldError, InvalidInput, NotFound
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.scope import StaffScope, TenantScope
from rcm.tenancy.staff import one_practice
from rcm.webhooks.models import EventType
from rcm.webhooks.outbox import OutboxRepository
from rcm.workqueue import service as workqueue
from rcm.workqueue.models import ItemEventType, ItemStatus, QueueKind, WorkItem
from rcm.workqueue.repository import WorkItemRepository

CODING_TASK = "coding_task"
CODING_QUERY = "coding_query"
NOT_HELD = workqueue.NOT_HELD


def item_view(item: WorkItem) -> schemas.WorkItem:
    return schemas.WorkItem(
        id=item.id,
        tenant_id=item.tenant_id,
        kind=item.kind,
        status=item.status,
        priority=item.priority,
        due_at=item.due_at,
        created_at=item.created_at,
        encounter_id=item.subject_id,
        leased_by=item.leased_by,
        lease_expires_at=item.lease_expires_at,
    )


def _coding_view(
    version: CodingVersion, diagnoses: Sequence[CodingDiagnosis], lines: Sequence[CodingLine]
) -> schemas.Coding:
    return schemas.Coding(
        id=version.id,
        number=version.number,
        state=version.state,
        coder=version.coder,
        created_at=version.created_at,
        diagnoses=[d.code for d in diagnoses],
        lines=[_line_view(line) for line in lines],
    )


def _line_view(line: CodingLine) -> schemas.Line:
    return schemas.Line(
        line_number=line.line_number,
        procedure_code=line.procedure_code,
        modifiers=list(line.modifiers),
        units=line.units,
        charge_cents=line.charge_cents,
        diagnosis_pointers=list(line.diagnosis_pointers),
    )


def query_view(scope: TenantScope, query: CodingQuery) -> schemas.Query:
    opened = unseal(scope.keyring, query)
    return schemas.Query(
        id=query.id,
        work_item_id=query.work_item_id,
        encounter_id=query.encounter_id,
        status=query.status,
        question=opened["question"] or "",
        answer=opened["answer"],
        asked_by=query.asked_by,
        created_at=query.created_at,
        answered_at=query.answered_at,
    )


# Holding an item -----------------------------------------------------------------------------------------


async def coding_item(scope: StaffScope, item_id: uuid.UUID) -> tuple[WorkItem, TenantScope]:
    """The coding item (404 outside the caller's practices) and its practice as a tenant scope."""
    item = await scope.repo(WorkItemRepository).get(item_id)
    if item is None or item.kind is not QueueKind.CODING:
        raise NotFound
    return item, await one_practice(scope, item.tenant_id)


def _holds(scope: StaffScope, item: WorkItem) -> bool:
    return workqueue.holds(scope.principal.subject, item)


async def next_task(
    sessions: async_sessionmaker[AsyncSession], keystore: KeyStore, principal: Principal, request: RequestInfo
) -> schemas.CodingTask | None:
    """Lease the next coding item across the caller's practices (their own live lease again, if they hold
    one: asking twice is the same answer) and open it."""
    return await workqueue.lease_and_open(
        sessions, keystore, principal, request, QueueKind.CODING, open_item=_open
    )


async def _open(scope: StaffScope, item: WorkItem) -> schemas.CodingTask:
    return await _task(await one_practice(scope, item.tenant_id), item)


async def open_task(scope: StaffScope, item_id: uuid.UUID) -> schemas.CodingTask:
    """An item the caller holds (a supervisor may open any item of the practices they supervise)."""
    item, practice = await coding_item(scope, item_id)
    if not _holds(scope, item) and not scope.principal.has_role(Role.SUPERVISOR):
        raise Conflict(NOT_HELD)
    return await _task(practice, item)


async def _task(scope: TenantScope, item: WorkItem) -> schemas.CodingTask:
    encounter = await scope.repo(EncounterRepository).get_or_404(item.subject_id)
    diagnoses, charges = await scope.repo(EncounterRepository).lines(encounter.id)
    coding = scope.repo(CodingRepository)
    draft = await coding.latest(item.id)
    draft_view = None
    if draft is not None:
        draft_view = _coding_view(draft, *await coding.rows(draft.id))
    queries = [query_view(scope, q) for q in await coding.queries(item.id)]
    scope.audit(
        "coding.task.read",
        Action.READ,
        resource_type=CODING_TASK,
        resource_ids=[item.id, encounter.id],
        patient_ids=[encounter.patient_id],
    )
    return schemas.CodingTask(
        id=item.id,
        item=item_view(item),
        patient_id=encounter.patient_id,
        service_date=encounter.service_date,
        place_of_service=encounter.place_of_service,
        documentation=unseal(scope.keyring, encounter)["documentation"],
        suggested=schemas.Suggested(
            diagnoses=[d.code for d in diagnoses],
            lines=[
                schemas.Line(
                    line_number=c.line_number,
                    procedure_code=c.procedure_code,
                    modifiers=list(c.modifiers),
                    units=c.units,
                    charge_cents=c.charge_cents,
                    diagnosis_pointers=list(c.diagnosis_pointers),
                )
                for c in charges
            ],
        ),
        draft=draft_view,
        queries=queries,
    )


# Saving a coding -----------------------------------------------------------------------------------------


def normalise_icd(code: str) -> str:
    return code.replace(".", "").upper()


def check_structure(data: schemas.CodingCreate, *, final: bool) -> None:
    """What needs no code table: pointers in range, no diagnosis twice; a final coding codes something."""
    errors: list[FieldError] = []
    codes = [normalise_icd(c) for c in data.diagnoses]
    seen: set[str] = set()
    for index, code in enumerate(codes):
        if code in seen:
            errors.append(FieldError(f"/diagnoses/{index}", f"{code} is given twice"))
        seen.add(code)
    for index, line in enumerate(data.lines):
        for p, pointer in enumerate(line.diagnosis_pointers):
            if pointer > len(codes):
                errors.append(
                    FieldError(
                        f"/lines/{index}/diagnosis_pointers/{p}",
                        f"points at diagnosis {pointer}, but there are {len(codes)}",
                    )
                )
        if len(set(line.diagnosis_pointers)) != len(line.diagnosis_pointers):
            errors.append(FieldError(f"/lines/{index}/diagnosis_pointers", "a pointer is repeated"))
    if final and not codes:
        errors.append(FieldError("/diagnoses", "a completed coding needs at least one diagnosis"))
    if final and not data.lines:
        errors.append(FieldError("/lines", "a completed coding needs at least one procedure line"))
    if errors:
        raise InvalidInput("The coding is invalid.", errors=errors)


async def price(scope: TenantScope, data: schemas.CodingCreate) -> list[int]:
    """Each line's charge: as given, or units x the practice's fee for the code (with its first modifier
    if the schedule prices that combination apart). The loaded schedule (CSV) wins over the manifest's."""
    wanted = [line.procedure_code for line in data.lines if line.charge_cents is None]
    fees = _manifest_fees(scope.manifest)
    if wanted:
        fees.update(await scope.repo(FeeScheduleRepository).charges(wanted))
    charges: list[int] = []
    errors: list[FieldError] = []
    for index, line in enumerate(data.lines):
        if line.charge_cents is not None:
            charges.append(line.charge_cents)
            continue
        modifier = line.modifiers[0] if line.modifiers else ""
        fee = fees.get((line.procedure_code, modifier), fees.get((line.procedure_code, "")))
        if fee is None:
            errors.append(
                FieldError(
                    f"/lines/{index}/charge_cents",
                    f"{line.procedure_code} is not on the practice's fee schedule: give the charge",
                )
            )
            charges.append(0)
        else:
            charges.append(fee * line.units)
    if errors:
        raise InvalidInput("A line cannot be priced.", errors=errors)
    return charges


def _manifest_fees(manifest: TenantManifest) -> dict[tuple[str, str], int]:
    return {(fee.code, fee.modifier or ""): fee.charge_cents for fee in manifest.fee_schedule}


async def check_codes(scope: TenantScope, data: schemas.CodingCreate, on: date) -> list[str]:
    """Every code valid on the date of service (errors name the code, the date and the reason); returns the
    code tables' warnings for the coder."""
    items: list[tuple[str, str]] = []
    pointers: list[str] = []
    for index, code in enumerate(data.diagnoses):
        items.append((CodeSystem.ICD10CM, normalise_icd(code)))
        pointers.append(f"/diagnoses/{index}")
    for index, line in enumerate(data.lines):
        items.append((codecheck.procedure_system(line.procedure_code), line.procedure_code))
        pointers.append(f"/lines/{index}/procedure_code")
        for m, modifier in enumerate(line.modifiers):
            items.append((CodeSystem.MODIFIER, modifier))
            pointers.append(f"/lines/{index}/modifiers/{m}")
    results = await codecheck.check_codes(scope.session, items, on)
    errors = [
        FieldError(pointer, f"{r.code} is not valid on {r.on.isoformat()}: {r.reason or 'unknown code'}")
        for pointer, r in zip(pointers, results, strict=True)
        if not r.valid
    ]
    if errors:
        raise InvalidInput("A code is not valid on the date of service.", errors=errors)
    return sorted({f"{r.code}: {r.warning}" for r in results if r.warning})


async def save_version(
    scope: TenantScope, item: WorkItem, data: schemas.CodingCreate, state: VersionState
) -> schemas.Coding:
    charges = await price(scope, data)
    coding = scope.repo(CodingRepository)
    version = CodingVersion(
        id=uuid.uuid4(),
        work_item_id=item.id,
        encounter_id=item.subject_id,
        number=await coding.next_number(item.id),
        state=state,
        coder=scope.principal.subject,
    )
    diagnoses = [
        CodingDiagnosis(id=uuid.uuid4(), coding_version_id=version.id, sequence=n, code=normalise_icd(code))
        for n, code in enumerate(data.diagnoses, start=1)
    ]
    lines = [
        CodingLine(
            id=uuid.uuid4(),
            coding_version_id=version.id,
            line_number=n,
            procedure_code=line.procedure_code,
            modifiers=list(line.modifiers),
            units=line.units,
            charge_cents=charge,
            diagnosis_pointers=list(line.diagnosis_pointers),
        )
        for n, (line, charge) in enumerate(zip(data.lines, charges, strict=True), start=1)
    ]
    await coding.insert(version, *diagnoses, *lines)
    return _coding_view(version, diagnoses, lines)


async def save_draft(scope: StaffScope, item_id: uuid.UUID, data: schemas.CodingCreate) -> schemas.Coding:
    item, practice = await coding_item(scope, item_id)
    check_structure(data, final=False)
    if (
        await practice.repo(WorkItemRepository).note(
            item.id, holder=scope.principal.subject, event=ItemEventType.DRAFTED
        )
        is None
    ):
        raise Conflict(NOT_HELD)
    coding = await save_version(practice, item, data, VersionState.DRAFT)
    practice.audit(
        "coding.draft", Action.CREATE, resource_type=CODING_TASK, resource_ids=[item.id, coding.id]
    )
    return coding


async def complete(
    scope: StaffScope, practice: TenantScope, item_id: uuid.UUID, data: schemas.CodingCreate
) -> schemas.Completed:
    item = await practice.repo(WorkItemRepository).get_or_404(item_id)
    if item.kind is not QueueKind.CODING:
        raise NotFound
    if not _holds(scope, item):
        raise Conflict(NOT_HELD)
    check_structure(data, final=True)
    encounter: Encounter = await practice.repo(EncounterRepository).get_or_404(item.subject_id)
    await price(practice, data)  # an unpriced line is named before the code tables are asked
    warnings = await check_codes(practice, data, encounter.service_date)
    coding = await save_version(practice, item, data, VersionState.COMPLETED)
    done = await practice.repo(WorkItemRepository).finish(
        item.id, holder=scope.principal.subject, event=ItemEventType.COMPLETED, status=ItemStatus.DONE
    )
    if done is None:
        raise Conflict(NOT_HELD)
    await practice.repo(EncounterStatusRepository).set_status(encounter.id, "coded")
    practice.audit(
        "coding.complete",
        Action.UPDATE,
        resource_type=CODING_TASK,
        resource_ids=[item.id, coding.id],
        patient_ids=[encounter.patient_id],
        detail={"diagnoses": len(data.diagnoses), "lines": len(data.lines), "warnings": len(warnings)},
    )
    return schemas.Completed(id=item.id, item=item_view(done), coding=coding, warnings=warnings)


async def release(scope: StaffScope, practice: TenantScope, item_id: uuid.UUID) -> schemas.WorkItem:
    item = await practice.repo(WorkItemRepository).finish(
        item_id, holder=scope.principal.subject, event=ItemEventType.RELEASED, status=ItemStatus.OPEN
    )
    if item is None:
        raise Conflict(NOT_HELD)
    practice.audit("coding.release", Action.UPDATE, resource_type=CODING_TASK, resource_ids=[item.id])
    return item_view(item)


async def ask(
    scope: StaffScope, practice: TenantScope, item_id: uuid.UUID, data: schemas.QueryCreate
) -> schemas.Query:
    """Send a query to the practice: the item waits (no lease) until the practice answers."""
    item = await practice.repo(WorkItemRepository).finish(
        item_id, holder=scope.principal.subject, event=ItemEventType.QUERIED, status=ItemStatus.WAITING
    )
    if item is None:
        raise Conflict(NOT_HELD)
    query_id = uuid.uuid4()
    query = CodingQuery(
        id=query_id,
        work_item_id=item.id,
        encounter_id=item.subject_id,
        asked_by=scope.principal.subject,
        status=QueryStatus.OPEN,
        **seal(practice.keyring, CodingQuery, query_id, {"question": data.question, "answer": None}),
    )
    await practice.repo(CodingRepository).insert(query)
    # The practice's systems hear of it at once (ids only: the question itself is PHI and stays here).
    await practice.repo(OutboxRepository).emit(
        practice.tenant_id,
        EventType.CODER_QUERY_CREATED,
        at=query.created_at,
        data={
            "query_id": str(query.id),
            "encounter_id": str(query.encounter_id),
            "status": query.status.value,
        },
    )
    practice.audit(
        "coding.query.create",
        Action.CREATE,
        resource_type=CODING_QUERY,
        resource_ids=[query.id, item.id],
    )
    return query_view(practice, query)


# The practice's side ---------------------------------------------------------------------------------------


async def open_queries(scope: TenantScope, *, limit: int) -> list[schemas.Query]:
    queries = await scope.repo(CodingRepository).open_queries(limit=limit)
    scope.audit(
        "coding.query.list", Action.READ, resource_type=CODING_QUERY, resource_ids=[q.id for q in queries]
    )
    return [query_view(scope, q) for q in queries]


async def answer(scope: TenantScope, query_id: uuid.UUID, data: schemas.QueryAnswer) -> schemas.Query:
    """The practice answers: the query is closed and its item returns to the queue."""
    coding = scope.repo(CodingRepository)
    if await coding.query(query_id) is None:
        raise NotFound
    sealed = scope.keyring.encrypt_str(
        table=CodingQuery.__tablename__, column="answer", row_id=query_id, value=data.answer
    )
    query = await coding.answer(query_id, answer=sealed or b"", answered_by=scope.principal.subject)
    if query is None:
        raise Conflict("This query has been answered already.")
    await scope.repo(WorkItemRepository).answered(query.work_item_id, actor=scope.principal.subject)
    scope.audit(
        "coding.query.answer",
        Action.UPDATE,
        resource_type=CODING_QUERY,
        resource_ids=[query.id, query.work_item_id],
    )
    return query_view(scope, query)
