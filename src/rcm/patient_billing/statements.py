"""Statement runs: once per practice cycle, a statement (PDF, JSON, CSV) for each patient whose balance due
reaches the practice's minimum, a small-balance write-off for those at or under its threshold, the accounts
older than its collections limit flagged, and its payment plans reviewed for missed installments.

A run is a job on the worker (ids only in its message). It is idempotent per cycle: asking again in the same
cycle answers the first run, and a run redelivered after a crash resumes after the last patient whose
outcome it committed (one transaction per patient: the statement's blobs, its row, the ledger write-off and
the run's counts commit together). Nothing about a patient goes into a blob's metadata, a log line, a job
message or a failure reason: blobs are named by their ids, the run counts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, request_info_from
from rcm.blobs.store import BlobStore
from rcm.crypto.keyring import KeyStore
from rcm.identity.principal import Principal, submitted_columns, submitter, system_principal
from rcm.kit.errors import FieldError, InvalidInput, NotFound
from rcm.kit.models import utcnow
from rcm.kit.pagination import Page, decode_cursor, paginate
from rcm.kit.tenant import TenantId
from rcm.ledger.models import Account, Source
from rcm.ledger.posting import Draft
from rcm.ledger.repository import LedgerRepository
from rcm.patient_billing import render, schemas, service
from rcm.patient_billing.models import (
    InstallmentState,
    PaymentPlanState,
    Statement,
    StatementOutcome,
    StatementRun,
    StatementRunStatus,
)
from rcm.patient_billing.repository import WRITE_OFF_REASON, PatientBillingRepository
from rcm.patients.repository import PatientRepository
from rcm.patients.service import patient_view
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import TenantScope
from rcm.webhooks.models import EventType
from rcm.webhooks.outbox import OutboxRepository
from rcm.worker import enqueue

JOB_NAME = "patient_billing.statement_run"
CYCLES = "patient_billing.statement_cycles"
RUN = "statement_run"
STATEMENT = "statement"
# Cycles are counted from this day: a cycle of N days starts on EPOCH + k * N.
EPOCH = date(2026, 1, 1)
FORMATS = {"pdf": "application/pdf", "json": "application/json", "csv": "text/csv"}
# Where a statement's files are fetched (the controller's route), named in its webhook event.
_FILES = "/api/v1/tenants/{slug}/statements/{statement_id}"
BATCH = 50


def cycle_start(as_of: date, cycle_days: int) -> date:
    return EPOCH + timedelta(days=((as_of - EPOCH).days // cycle_days) * cycle_days)


def run_view(row: StatementRun) -> schemas.StatementRunView:
    return schemas.StatementRunView(
        id=row.id,
        cycle_start=row.cycle_start,
        as_of=row.as_of,
        status=row.status,
        patients_total=row.patients_total,
        patients_done=row.patients_done,
        statements=row.statements,
        written_off=row.written_off,
        written_off_cents=row.written_off_cents,
        collections=row.collections,
        plans_defaulted=row.plans_defaulted,
        created_at=row.created_at,
        updated_at=row.updated_at,
        failure=row.failure,
    )


def statement_view(row: Statement) -> schemas.PatientStatement:
    files = [] if row.pdf_blob_id is None else list(FORMATS)
    return schemas.PatientStatement(
        id=row.id,
        run_id=row.run_id,
        patient_id=row.patient_id,
        outcome=row.outcome,
        balance_cents=row.balance_cents,
        amount_due_cents=row.amount_due_cents,
        collections=row.collections,
        created_at=row.created_at,
        files=files,
    )


# Asking ----------------------------------------------------------------------------------------------------


async def start_run(
    scope: TenantScope, data: schemas.StatementRunCreate
) -> tuple[int, schemas.StatementRunView]:
    """The run of the cycle holding ``as_of``: a new one (202, sent to the worker after commit), or the one
    the cycle already has (200)."""
    cycle_days = scope.manifest.statements.cycle_days
    as_of = data.as_of or service.today()
    if as_of > service.today() + timedelta(days=1):
        raise InvalidInput(
            "The statement date is in the future.", errors=[FieldError("/as_of", "is in the future")]
        )
    if as_of < service.today() - timedelta(days=cycle_days):
        # A statement dated in a past cycle would age today's ledger as of then.
        raise InvalidInput(
            "The statement date is before the current cycle.",
            errors=[FieldError("/as_of", "is before the current cycle")],
        )
    cycle = cycle_start(as_of, cycle_days)
    repo = scope.repo(PatientBillingRepository)
    row = StatementRun(
        id=uuid.uuid4(),
        cycle_start=cycle,
        as_of=as_of,
        status=StatementRunStatus.QUEUED,
        patients_total=0,
        patients_done=0,
        statements=0,
        written_off=0,
        written_off_cents=0,
        collections=0,
        plans_defaulted=0,
        cursor_patient=None,
        **submitted_columns(scope.principal),
        failure=None,
    )
    if not await repo.open_run(row):
        existing = await repo.run_of_cycle(cycle)
        assert existing is not None
        if existing.status is StatementRunStatus.FAILED:
            return 202, await _restart(scope, existing)
        scope.audit("statement_run.read", Action.READ, resource_type=RUN, resource_ids=[existing.id])
        return 200, run_view(existing)
    created = await repo.run(row.id)
    assert created is not None
    scope.audit("statement_run.create", Action.CREATE, resource_type=RUN, resource_ids=[row.id])
    _send(scope, row.id)
    return 202, run_view(created)


def _send(scope: TenantScope, run_id: uuid.UUID) -> None:
    from rcm.patient_billing.tasks import run_statements  # the job's module imports this one

    enqueue(scope.session, run_statements, tenant_id=scope.tenant_id, run_id=run_id)


async def _restart(scope: TenantScope, run: StatementRun) -> schemas.StatementRunView:
    """A failed run asked for again: sent to the worker once more, resuming after its last patient done
    (from the start when it failed before its first)."""
    repo = scope.repo(PatientBillingRepository)
    locked = await repo.run(run.id, lock=True)
    assert locked is not None
    began = locked.cursor_patient is not None or locked.patients_total > 0
    status = StatementRunStatus.RUNNING if began else StatementRunStatus.QUEUED
    await repo.advance_run(locked, status=status, failure=None)
    scope.audit("statement_run.restart", Action.UPDATE, resource_type=RUN, resource_ids=[run.id])
    _send(scope, run.id)
    return run_view(locked)


async def fail_run(
    sessions: async_sessionmaker[AsyncSession], keystore: KeyStore, tenant_id: TenantId, run_id: uuid.UUID
) -> None:
    """The job gave up (its last retry failed): the run says so with a fixed reason (never the error, which
    could carry data); asking for the cycle's run again restarts it."""
    async with job_tenant_scope(
        sessions, keystore, tenant_id, actor=_SYSTEM, request=request_info_from(None), job=JOB_NAME
    ) as scope:
        repo = scope.repo(PatientBillingRepository)
        run = await repo.run(run_id, lock=True)
        if run is not None and run.status is not StatementRunStatus.DONE:
            await repo.advance_run(
                run, status=StatementRunStatus.FAILED, failure="the run failed after its retries; ask again"
            )


async def start_cycles(
    sessions: async_sessionmaker[AsyncSession], keystore: KeyStore, tenant_ids: Sequence[TenantId]
) -> int:
    """This cycle's run for each of ``tenant_ids`` whose manifest asks for automatic runs (and has none yet);
    how many were started. A practice not active is passed over."""
    started = 0
    for tenant_id in tenant_ids:
        try:
            async with job_tenant_scope(
                sessions, keystore, tenant_id, actor=_SYSTEM, request=request_info_from(None), job=CYCLES
            ) as scope:
                if scope.manifest.statements.automatic:
                    status, _ = await start_run(scope, schemas.StatementRunCreate())
                    started += status == 202
        except NotFound:
            continue
    return started


async def get_run(scope: TenantScope, run_id: uuid.UUID) -> schemas.StatementRunView:
    row = await scope.repo(PatientBillingRepository).run(run_id)
    if row is None:
        raise NotFound
    scope.audit("statement_run.read", Action.READ, resource_type=RUN, resource_ids=[row.id])
    return run_view(row)


async def list_runs(scope: TenantScope, *, limit: int, cursor: str | None) -> Page[schemas.StatementRunView]:
    rows = await scope.repo(PatientBillingRepository).runs(
        limit=limit + 1, after=decode_cursor(cursor) if cursor else None
    )
    scope.audit(
        "statement_run.list", Action.READ, resource_type=RUN, resource_ids=[r.id for r in rows[:limit]]
    )
    return paginate(rows, limit, run_view)


async def run_statements_list(scope: TenantScope, run_id: uuid.UUID) -> list[schemas.PatientStatement]:
    repo = scope.repo(PatientBillingRepository)
    if await repo.run(run_id) is None:
        raise NotFound
    rows = await repo.statements_of_run(run_id)
    scope.audit(
        "statement.list",
        Action.READ,
        resource_type=STATEMENT,
        resource_ids=[r.id for r in rows],
        patient_ids=sorted({r.patient_id for r in rows}),
    )
    return [statement_view(r) for r in rows]


async def patient_statements(scope: TenantScope, patient_id: uuid.UUID) -> list[schemas.PatientStatement]:
    """A patient's statements and write-offs, oldest first (404 for a patient not the practice's)."""
    await service.check_patient(scope, patient_id)
    rows = await scope.repo(PatientBillingRepository).statements_of_patient(patient_id)
    scope.audit(
        "statement.list",
        Action.READ,
        resource_type=STATEMENT,
        resource_ids=[r.id for r in rows],
        patient_ids=[patient_id],
    )
    return [statement_view(r) for r in rows]


async def open_statement(scope: TenantScope, statement_id: uuid.UUID, file_format: str) -> uuid.UUID:
    """The blob of one of the statement's files; audited as a read of the patient's statement."""
    row = await scope.repo(PatientBillingRepository).statement(statement_id)
    if row is None or file_format not in FORMATS:
        raise NotFound
    blob_id = {"pdf": row.pdf_blob_id, "json": row.json_blob_id, "csv": row.csv_blob_id}[file_format]
    if blob_id is None:
        raise NotFound
    scope.audit(
        "statement.download",
        Action.READ,
        resource_type=STATEMENT,
        resource_ids=[row.id],
        patient_ids=[row.patient_id],
        detail={"format": file_format},
    )
    return blob_id


# Running ---------------------------------------------------------------------------------------------------

_SYSTEM = system_principal(JOB_NAME)


def run_principal(run: StatementRun) -> Principal:
    """Who asked for the run, as its audit events name them."""
    return submitter(run, token_id=f"statement_run:{run.id}")


async def run_job(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    store: BlobStore,
    tenant_id: TenantId,
    run_id: uuid.UUID,
    *,
    batch: int = BATCH,
    stop_after: int | None = None,
) -> StatementRunStatus:
    """Run (or resume) a statement run to its end. ``stop_after`` stops after that many patients, as a
    crash would (tests)."""

    def scope(actor: Principal = _SYSTEM) -> AbstractAsyncContextManager[TenantScope]:
        return job_tenant_scope(
            sessions, keystore, tenant_id, actor=actor, request=request_info_from(None), job=JOB_NAME
        )

    async with scope() as s:
        repo = s.repo(PatientBillingRepository)
        run = await repo.run(run_id, lock=True)
        if run is None:
            raise NotFound
        if run.status in (StatementRunStatus.DONE, StatementRunStatus.FAILED):
            return run.status
        actor, started = run_principal(run), run.status is StatementRunStatus.RUNNING
        cursor = run.cursor_patient
    if not started:
        async with scope(actor) as s:
            repo = s.repo(PatientBillingRepository)
            run = await repo.run(run_id, lock=True)
            assert run is not None
            if run.status is StatementRunStatus.QUEUED:
                # First start: the plans are reviewed and the patients counted once, with the status change.
                _, defaulted = await service.review_plans(s, as_of=run.as_of)
                await repo.advance_run(
                    run,
                    status=StatementRunStatus.RUNNING,
                    patients_total=await repo.count_owing(),
                    plans_defaulted=defaulted,
                )
    done = 0
    while True:
        async with scope() as s:
            patients = await s.repo(PatientBillingRepository).patients_owing(after=cursor, limit=batch)
        if not patients:
            break
        for patient_id in patients:
            async with scope(actor) as s:
                repo = s.repo(PatientBillingRepository)
                run = await repo.run(run_id, lock=True)
                assert run is not None
                counts = await _patient_statement(s, store, run, patient_id)
                await repo.advance_run(
                    run,
                    cursor_patient=patient_id,
                    patients_done=run.patients_done + 1,
                    **{key: getattr(run, key) + value for key, value in counts.items()},
                )
            cursor = patient_id
            done += 1
            if stop_after is not None and done >= stop_after:
                return StatementRunStatus.RUNNING
    async with scope() as s:
        repo = s.repo(PatientBillingRepository)
        run = await repo.run(run_id, lock=True)
        assert run is not None
        # Patients who came to owe after the count are counted as they are done.
        await repo.advance_run(
            run, status=StatementRunStatus.DONE, patients_total=max(run.patients_total, run.patients_done)
        )
        await s.repo(OutboxRepository).emit(
            s.tenant_id,
            EventType.STATEMENT_RUN_COMPLETED,
            at=utcnow(),
            data={
                "run_id": str(run.id),
                "statements": run.statements,
                "written_off": run.written_off,
                "collections": run.collections,
            },
        )
    return StatementRunStatus.DONE


async def _patient_statement(
    scope: TenantScope, store: BlobStore, run: StatementRun, patient_id: uuid.UUID
) -> dict[str, int]:
    """One patient's outcome in the run; the counts it adds. A patient done before (a redelivery) adds
    nothing."""
    repo = scope.repo(PatientBillingRepository)
    if await repo.statement_of(run.id, patient_id) is not None:
        return {}
    rules = scope.manifest.statements
    balance = await service.compute_balance(scope, patient_id, as_of=run.as_of)
    due = balance.due_cents
    if 0 < due <= rules.small_balance_write_off_cents and balance.payment_plan_id is None:
        return await _write_off(scope, run, patient_id, balance)
    installment = await _installment_due(repo, balance, run.as_of + timedelta(days=rules.cycle_days))
    if due < rules.minimum_balance_cents or due <= 0:
        return {}
    statement_id = uuid.uuid4()
    doc = await _document(
        scope,
        statement_id=statement_id,
        run=run,
        patient_id=patient_id,
        balance=balance,
        installment=installment,
    )
    refs = {}
    for name, data in (
        ("pdf", render.to_pdf(doc)),
        ("json", render.to_json(doc)),
        ("csv", render.to_csv(doc)),
    ):
        refs[name] = (await store.put(scope, _once(data), content_type=FORMATS[name])).id
    await repo.insert(
        Statement(
            id=statement_id,
            run_id=run.id,
            patient_id=patient_id,
            outcome=StatementOutcome.SENT,
            balance_cents=balance.balance_cents,
            amount_due_cents=doc.amount_due_cents,
            collections=balance.collections,
            pdf_blob_id=refs["pdf"],
            json_blob_id=refs["json"],
            csv_blob_id=refs["csv"],
        )
    )
    scope.audit(
        "statement.create",
        Action.CREATE,
        resource_type=STATEMENT,
        resource_ids=[statement_id],
        patient_ids=[patient_id],
        detail={"run_id": str(run.id)},
    )
    # The practice's portal or mail house learns of it: ids only; fetching the files is the audited read.
    await scope.repo(OutboxRepository).emit(
        scope.tenant_id,
        EventType.STATEMENT_READY,
        at=utcnow(),
        data={
            "statement_id": str(statement_id),
            "run_id": str(run.id),
            "patient_id": str(patient_id),
            "files": _FILES.format(slug=scope.manifest.slug, statement_id=statement_id),
        },
    )
    return {"statements": 1, "collections": int(balance.collections)}


async def _write_off(
    scope: TenantScope, run: StatementRun, patient_id: uuid.UUID, balance: schemas.PatientBalance
) -> dict[str, int]:
    drafts = []
    for visit in balance.visits:
        if visit.balance_cents > 0 and not visit.insurance_pending:
            draft = Draft(Source.SMALL_BALANCE_WRITE_OFF, visit.claim_id)
            draft.add(
                Account.ADJUSTMENTS, Account.PATIENT_RECEIVABLE, visit.balance_cents, reason=WRITE_OFF_REASON
            )
            drafts.append(draft)
    await scope.repo(LedgerRepository).post(drafts, actor=scope.principal.subject)
    row = Statement(
        id=uuid.uuid4(),
        run_id=run.id,
        patient_id=patient_id,
        outcome=StatementOutcome.WRITTEN_OFF,
        balance_cents=balance.balance_cents,
        amount_due_cents=0,
        collections=False,
        pdf_blob_id=None,
        json_blob_id=None,
        csv_blob_id=None,
    )
    await scope.repo(PatientBillingRepository).insert(row)
    scope.audit(
        "statement.write_off",
        Action.CREATE,
        resource_type=STATEMENT,
        resource_ids=[row.id],
        patient_ids=[patient_id],
        detail={"amount_cents": balance.due_cents},
    )
    return {"written_off": 1, "written_off_cents": balance.due_cents}


async def _installment_due(
    repo: PatientBillingRepository, balance: schemas.PatientBalance, before: date
) -> render.InstallmentDue | None:
    """What a patient on a plan owes this cycle: the unpaid part of installments due by the next cycle."""
    if balance.payment_plan_id is None:
        return None
    plan = await repo.plan(balance.payment_plan_id)
    if plan is None or plan.state is not PaymentPlanState.ACTIVE:
        return None
    owing = [
        i
        for i in await repo.installments([plan.id])
        if i.state is not InstallmentState.PAID and i.due_on <= before
    ]
    if not owing:
        return None
    return render.InstallmentDue(
        due_on=min(i.due_on for i in owing), amount_cents=sum(i.amount_cents - i.paid_cents for i in owing)
    )


async def _document(
    scope: TenantScope,
    *,
    statement_id: uuid.UUID,
    run: StatementRun,
    patient_id: uuid.UUID,
    balance: schemas.PatientBalance,
    installment: render.InstallmentDue | None,
) -> render.StatementDoc:
    manifest = scope.manifest
    rules = manifest.statements
    patient_row = await scope.repo(PatientRepository).get(patient_id)
    assert patient_row is not None
    patient = patient_view(scope.keyring, patient_row)
    address = []
    if patient.address is not None:
        a = patient.address
        address = [a.line1, *([a.line2] if a.line2 else []), f"{a.city}, {a.state} {a.postal_code}"]
    practice_address = []
    if manifest.address is not None:
        p = manifest.address
        practice_address = [p.line1, *([p.line2] if p.line2 else []), f"{p.city}, {p.state} {p.postal_code}"]
    repo = scope.repo(PatientBillingRepository)
    lines = await repo.claim_lines([v.claim_id for v in balance.visits])
    providers = await repo.visit_providers([v.encounter_id for v in balance.visits])
    visits = [
        render.Visit(
            service_date=v.service_date,
            claim_id=v.claim_id,
            provider=providers.get(v.encounter_id),
            lines=[
                render.Line(
                    procedure_code=line.procedure_code,
                    modifiers=list(line.modifiers),
                    units=line.units,
                    charge_cents=line.charge_cents,
                )
                for line in lines.get(v.claim_id, [])
            ],
            charges_cents=v.charges_cents,
            insurance_paid_cents=v.insurance_paid_cents,
            adjustments_cents=v.adjustments_cents,
            patient_paid_cents=v.patient_paid_cents,
            written_off_cents=v.written_off_cents,
            balance_cents=v.balance_cents,
            insurance_pending=v.insurance_pending,
        )
        for v in balance.visits
        if v.balance_cents
    ]
    return render.StatementDoc(
        statement_id=statement_id,
        statement_date=run.as_of,
        account=patient_id.hex[:12].upper(),
        practice=render.Party(name=rules.branding.name or manifest.name, address=practice_address),
        brand_color=rules.branding.color,
        patient=render.Party(name=f"{patient.given_name} {patient.family_name}", address=address),
        amount_due_cents=installment.amount_cents if installment else balance.due_cents,
        balance_cents=balance.balance_cents,
        pending_insurance_cents=balance.pending_insurance_cents,
        aging=balance.aging,
        visits=visits,
        how_to_pay=render.HowToPay(url=rules.pay_url, phone=rules.pay_phone, text=rules.pay_text),
        installment_due=installment,
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
