"""Bulk intake: accept a file (stored encrypted, one job per file content), then run it line by line.

Running a job is resumable and never creates twice: lines are committed in batches, and each batch's
transaction holds the lines' records (encounters, patients...), one ``bulk_intake_line`` row per line keyed
by (tenant, job, line number), and the job's cursor (last committed line). A worker that dies mid-batch loses
the whole batch; the redelivered message resumes after the cursor.

A batch's encounter lines (JSON or CSV) go through ``rcm.encounters.service.prepare_encounters`` together,
the function ``POST .../encounters`` runs as a batch of one: the same validation, records, audit events and
coding work item, with ONE lookup statement and ONE write statement for the lines. A rejected line is
refused before anything is written, so it never takes the others down. FHIR Bundle lines go through
``ingest_bundle`` below, each in a savepoint.

Batches are written one after the other, each in its own transaction, and the next batch is read, parsed
and prepared (looked up, resolved, its rows built and sealed: the CPU half of the work) while the one
before it is written: it is prepared as if that batch were stored (``IntakeBatch.after``), and prepared
again in its own transaction if that batch did not commit exactly what it prepared (it met a concurrent
writer) or another runner moved the cursor in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import Action, request_info_from
from rcm.audit.trail import discard_pending_since, pending_mark
from rcm.blobs.store import BlobStore
from rcm.bulk import parsing, schemas
from rcm.bulk.models import BulkFormat, BulkIntake, BulkStatus, LineOutcome
from rcm.bulk.repository import BulkIntakeRepository
from rcm.crypto.keyring import KeyStore
from rcm.encounters import service as encounters
from rcm.encounters.schemas import EncounterCreate
from rcm.fhir import service as fhir
from rcm.fhir.outcome import FhirRejected
from rcm.identity.principal import Principal, PrincipalKind, submitted_columns, submitter
from rcm.kit.collector import larger_young_generation
from rcm.kit.errors import FieldError, InvalidInput, NotFound, RCMError, UnsupportedMediaType
from rcm.kit.pagination import Page
from rcm.kit.strict import CONTENT_TYPE_POINTER
from rcm.kit.tenant import TenantId
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import TenantScope
from rcm.worker import enqueue

BULK_INTAKE = "bulk_intake"
JOB_NAME = "bulk.run_intake"
MEDIA_TYPES = {
    "application/x-ndjson": BulkFormat.NDJSON,
    "application/ndjson": BulkFormat.NDJSON,
    "application/fhir+ndjson": BulkFormat.NDJSON,
    "text/csv": BulkFormat.CSV,
}


def format_of(content_type: str | None) -> BulkFormat:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    found = MEDIA_TYPES.get(media)
    if found is None:
        raise UnsupportedMediaType(
            "A bulk intake is NDJSON (application/x-ndjson) or CSV (text/csv).",
            errors=[FieldError(CONTENT_TYPE_POINTER, "must be application/x-ndjson or text/csv")],
        )
    return found


def view(job: BulkIntake) -> schemas.BulkIntake:
    return schemas.BulkIntake(
        id=job.id,
        status=job.status,
        format=job.format,
        lines_read=job.lines_read,
        accepted=job.accepted,
        rejected=job.rejected,
        file_sha256=job.file_sha256.hex(),
        created_at=job.created_at,
        updated_at=job.updated_at,
        failure=job.failure,
    )


# Submitting ------------------------------------------------------------------------------------------------


async def store_upload(
    scope: TenantScope, store: BlobStore, body: AsyncIterable[bytes], *, fmt: BulkFormat, max_bytes: int
) -> tuple[uuid.UUID, bytes]:
    """Stream the upload into the blob store; (blob id, SHA-256 of the file)."""
    media = "text/csv" if fmt is BulkFormat.CSV else "application/x-ndjson"
    ref = await store.put(scope, body, content_type=media, max_bytes=max_bytes)
    return ref.id, bytes.fromhex(ref.sha256)


async def submit(
    scope: TenantScope, store: BlobStore, *, blob_id: uuid.UUID, sha256: bytes, fmt: BulkFormat
) -> tuple[int, schemas.BulkIntake]:
    """A job for the stored file (202, sent to the worker after commit), or the job that already read the
    same file (200; the new copy is deleted): a resubmitted file is never accepted twice."""
    repo = scope.repo(BulkIntakeRepository)
    existing = await repo.by_file(sha256)
    if existing is not None:
        await store.delete(scope, blob_id)
        scope.audit(
            "bulk_intake.read",
            Action.READ,
            resource_type=BULK_INTAKE,
            resource_ids=[existing.id],
            detail={"resubmitted": True},
        )
        return 200, view(existing)
    principal = scope.principal
    job = BulkIntake(
        id=uuid.uuid4(),
        blob_id=blob_id,
        file_sha256=sha256,
        format=fmt,
        status=BulkStatus.QUEUED,
        lines_read=0,
        accepted=0,
        rejected=0,
        cursor_line=0,
        **submitted_columns(principal),
    )
    await repo.insert(job)
    scope.audit("bulk_intake.create", Action.CREATE, resource_type=BULK_INTAKE, resource_ids=[job.id])
    from rcm.bulk.tasks import run_intake  # the job's module imports this one

    enqueue(scope.session, run_intake, tenant_id=scope.tenant_id, job_id=job.id)
    return 202, view(job)


async def get_job(scope: TenantScope, job_id: uuid.UUID) -> schemas.BulkIntake:
    job = await scope.repo(BulkIntakeRepository).get_or_404(job_id)
    scope.audit("bulk_intake.read", Action.READ, resource_type=BULK_INTAKE, resource_ids=[job.id])
    return view(job)


async def job_results(
    scope: TenantScope, job_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[schemas.BulkLineResult]:
    """Per-line outcomes in line order. They name created encounter ids and error pointers, no PHI values;
    reading them is audited like any read of encounter ids."""
    repo = scope.repo(BulkIntakeRepository)
    job = await repo.get_or_404(job_id)
    after = 0
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 9:
            raise InvalidInput(
                "The cursor is not one this API issued.", errors=[FieldError("query:cursor", "invalid")]
            )
        after = int(cursor)
    rows = await repo.lines(job.id, after=after, limit=limit + 1)
    shown = rows[:limit]
    items = [
        schemas.BulkLineResult(
            line=row.line_no,
            outcome=row.outcome,
            encounter_id=row.encounter_id,
            errors=[schemas.LineError(**e) for e in row.errors or []],
        )
        for row in shown
    ]
    scope.audit(
        "bulk_intake.results",
        Action.READ,
        resource_type=BULK_INTAKE,
        resource_ids=[job.id, *(i.encounter_id for i in items if i.encounter_id)],
        detail={"count": len(items)},
    )
    next_cursor = str(shown[-1].line_no) if len(rows) > limit and shown else None
    return Page(items=items, next_cursor=next_cursor)


# FHIR bundles --------------------------------------------------------------------------------------------


async def ingest_bundle(scope: TenantScope, bundle: dict[str, Any]) -> list[uuid.UUID]:
    """A Bundle line, applied by the FHIR intake as a transaction (all of the line or none of it, inside the
    line's savepoint): the same records as ``POST /fhir/r4``. Returns the encounters it created or found;
    a refusal becomes the line's errors, each naming the entry and element (FHIRPath)."""
    try:
        body = json.dumps(bundle).encode()
        result = await fhir.ingest_bundle(scope, body, mode=fhir.BundleMode.TRANSACTION)
    except FhirRejected as refused:
        errors = [FieldError(issue.expression or "", issue.diagnostics) for issue in refused.issues]
        raise InvalidInput(refused.detail, errors=errors) from None
    return [
        uuid.UUID(entry.location.rstrip("/").rsplit("/", 1)[-1])
        for entry in result.entries
        if entry.resource_type == "Encounter" and entry.location is not None
    ]


# Running ---------------------------------------------------------------------------------------------------


def job_principal(job: BulkIntake) -> Principal:
    """The submitter, as the job's audit events name them."""
    return submitter(job, token_id=f"bulk:{job.id}")


@dataclass(frozen=True, slots=True)
class _Run:
    sessions: async_sessionmaker[AsyncSession]
    keystore: KeyStore
    tenant_id: TenantId
    job_id: uuid.UUID
    skew: timedelta

    def scope(self, actor: Principal) -> AbstractAsyncContextManager[TenantScope]:
        return job_tenant_scope(
            self.sessions,
            self.keystore,
            self.tenant_id,
            actor=actor,
            request=request_info_from(None),
            job=JOB_NAME,
        )


# The actor recorded while the job only changes its own status (before it acts for the submitter).
_SYSTEM = Principal(
    kind=PrincipalKind.CLIENT,
    subject="system:bulk",
    roles=frozenset(),
    scopes=frozenset(),
    token_id=f"job:{JOB_NAME}",
)


async def run_job(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    store: BlobStore,
    tenant_id: TenantId,
    job_id: uuid.UUID,
    *,
    batch_lines: int,
    skew: timedelta,
    stop_after_batches: int | None = None,
) -> BulkStatus:
    """Run (or resume) a job to its end; returns its status. ``stop_after_batches`` stops early, as a crash
    between batches would (tests). The collector's young generation is larger meanwhile: the batches
    held in memory would otherwise be scanned hundreds of times each (``rcm.kit.collector``)."""
    with larger_young_generation():
        return await _run_job(
            sessions,
            keystore,
            store,
            tenant_id,
            job_id,
            batch_lines=batch_lines,
            skew=skew,
            stop_after_batches=stop_after_batches,
        )


async def _run_job(
    sessions: async_sessionmaker[AsyncSession],
    keystore: KeyStore,
    store: BlobStore,
    tenant_id: TenantId,
    job_id: uuid.UUID,
    *,
    batch_lines: int,
    skew: timedelta,
    stop_after_batches: int | None,
) -> BulkStatus:
    run = _Run(sessions, keystore, tenant_id, job_id, skew)
    async with run.scope(_SYSTEM) as scope:
        job = await scope.repo(BulkIntakeRepository).lock(job_id)
        if job is None:
            raise NotFound
        if job.status in (BulkStatus.DONE, BulkStatus.FAILED):
            return job.status
        await scope.repo(BulkIntakeRepository).set_status(job, BulkStatus.RUNNING)
        actor = job_principal(job)
        cursor, fmt, blob_id = job.cursor_line, job.format, job.blob_id
    # The file is read in short transactions (no snapshot held for the job's length); each batch writes in
    # a transaction of its own. Batches run one at a time, in order (each sees what the one before it
    # committed), but the next batch's lines are read and parsed while the one before it awaits the
    # database: at most two batches are held at once.
    layout: parsing.CsvLayout | None = None
    batch: list[tuple[int, parsing.Parsed | None]] = []
    batches = 0
    flight = _InFlight()
    try:
        chunks = store.open_in_steps(lambda: run.scope(actor), blob_id)
        async for number, raw in parsing.lines(chunks):
            if fmt is BulkFormat.CSV and number == 1:
                layout = parsing.CsvLayout.from_header(raw or b"")
                continue
            if number <= cursor or (raw is not None and not raw.strip()):
                continue  # done before a restart, or a blank line (not a record)
            batch.append((number, _parse(raw, layout)))
            if len(batch) >= batch_lines:
                if not flight.prepared_ahead():
                    await flight.settle()  # what the batch in flight creates is known only once it is stored
                ahead = await _prepare_ahead(run, actor, batch, earlier=flight.ahead)
                if not await flight.settle():
                    # The batch before did not write what it had prepared: prepare against what it stored.
                    ahead = await _prepare_ahead(run, actor, batch, earlier=None)
                flight.start(_run_batch(run, actor, batch, layout, ahead=ahead), ahead)
                batch = []
                batches += 1
                if stop_after_batches is not None and batches >= stop_after_batches:
                    await flight.settle()
                    return BulkStatus.RUNNING
        await flight.settle()
    except parsing.FileError as exc:
        await flight.settle()
        return await _finish(run, BulkStatus.FAILED, str(exc))
    finally:
        await flight.abandon()
    await _run_batch(run, actor, batch, layout, last=True)
    return BulkStatus.DONE


class _InFlight:
    """The one batch being written while the next is read and prepared (started once the one before it
    has settled), with what it prepared ahead: the next batch is prepared as if that were stored."""

    def __init__(self) -> None:
        self.running: asyncio.Task[bool] | None = None
        self.ahead: encounters.IntakeBatch | None = None

    def prepared_ahead(self) -> bool:
        """Nothing in flight, or a batch whose creations are known (it was prepared ahead)."""
        return self.running is None or self.ahead is not None

    def start(self, work: Coroutine[Any, Any, bool], ahead: encounters.IntakeBatch | None) -> None:
        assert self.running is None, "settle the batch in flight first"
        self.running = asyncio.create_task(work)
        self.ahead = ahead

    async def settle(self) -> bool:
        """Wait for the batch in flight (its error is the job's); False when it did not write exactly what
        it had prepared ahead, so a batch prepared against that is stale."""
        running, self.running, self.ahead = self.running, None, None
        return await running if running is not None else True

    async def abandon(self) -> None:
        """The read failed (or the job was cancelled) with a batch in flight: it is lost as a crash would
        lose it (its transaction rolls back), and the redelivered job resumes after the cursor."""
        running, self.running = self.running, None
        if running is not None:
            running.cancel()  # a no-op once it has ended; awaiting it then retrieves its outcome
            with contextlib.suppress(BaseException):
                await running


def _parse(raw: bytes | None, layout: parsing.CsvLayout | None) -> parsing.Parsed | None:
    """A line parsed (None: over the length limit); pure, so it may run ahead of the batch it joins."""
    if raw is None:
        return None
    return layout.parse(raw) if layout is not None else parsing.parse_json_line(raw)


async def _finish(run: _Run, status: BulkStatus, failure: str | None) -> BulkStatus:
    async with run.scope(_SYSTEM) as scope:
        repo = scope.repo(BulkIntakeRepository)
        job = await repo.lock(run.job_id)
        assert job is not None
        await repo.set_status(job, status, failure)
    return status


def _encounter_lines(
    batch: list[tuple[int, parsing.Parsed | None]],
) -> list[tuple[int, EncounterCreate]] | None:
    """The batch's encounter lines, or None when it holds a Bundle line (taken in turn with the others)."""
    items: list[tuple[int, EncounterCreate]] = []
    for number, parsed in batch:
        if parsed is None or parsed.errors:
            continue
        if parsed.encounter is None:
            return None
        items.append((number, parsed.encounter))
    return items


async def _prepare_ahead(
    run: _Run,
    actor: Principal,
    batch: list[tuple[int, parsing.Parsed | None]],
    *,
    earlier: encounters.IntakeBatch | None,
) -> encounters.IntakeBatch | None:
    """The batch's encounter lines prepared in a short transaction of their own, as if ``earlier`` (the
    batch being written) were stored; None for a batch with a Bundle line (prepared in turn, in its own)."""
    items = _encounter_lines(batch)
    if items is None:
        return None
    async with run.scope(actor) as scope:
        return await encounters.prepare_encounters(
            scope,
            [data for _, data in items],
            scope.manifest,
            source="bulk",
            skew=run.skew,
            earlier=earlier,
            audit=False,
        )


async def _run_batch(
    run: _Run,
    actor: Principal,
    batch: list[tuple[int, parsing.Parsed | None]],
    layout: parsing.CsvLayout | None,
    *,
    last: bool = False,
    ahead: encounters.IntakeBatch | None = None,
) -> bool:
    """Write one batch with its line outcomes and the job's cursor; True when it wrote exactly the rows
    ``ahead`` had prepared (what the batch after it may have been prepared against)."""
    async with run.scope(actor) as scope:
        repo = scope.repo(BulkIntakeRepository)
        job = await repo.lock(
            run.job_id
        )  # a second runner of the same job waits here, then skips what is done
        if job is None:
            raise NotFound
        whole = len(batch)
        batch = [(n, raw) for n, raw in batch if n > job.cursor_line]
        if len(batch) != whole:
            ahead = None  # another runner wrote some of these lines: prepare what is left afresh
        outcomes: dict[int, dict[str, Any]] = {}
        run_of_encounters: list[tuple[int, EncounterCreate]] = []
        exact = ahead is not None
        for number, parsed in batch:
            if parsed is None:  # a line over the length limit
                outcomes[number] = _rejected(parsing.too_long())
                continue
            if parsed.errors:
                outcomes[number] = _rejected(parsed.errors)
            elif parsed.encounter is not None:
                run_of_encounters.append((number, parsed.encounter))
            else:
                # A Bundle line: the encounters before it are written first, as a line-by-line run would.
                outcomes |= await _run_encounters(scope, run_of_encounters, layout, skew=run.skew)
                run_of_encounters = []
                outcomes[number] = await _run_line(scope, parsed, layout, skew=run.skew)
        if ahead is not None:
            written, exact = await _write_prepared(scope, run_of_encounters, ahead, layout, skew=run.skew)
            outcomes |= written
        else:
            outcomes |= await _run_encounters(scope, run_of_encounters, layout, skew=run.skew)
        rows = [{"line_no": number, **outcomes[number]} for number, _ in batch]
        accepted = sum(row["outcome"] is LineOutcome.ACCEPTED for row in rows)
        await repo.add_lines(job, rows)
        values: dict[str, Any] = {}
        if batch:
            values.update(
                cursor_line=batch[-1][0],
                lines_read=job.lines_read + len(batch),
                accepted=job.accepted + accepted,
                rejected=job.rejected + len(batch) - accepted,
            )
        if last:
            values["status"] = BulkStatus.DONE
        if values:
            await repo.advance(job, **values)
    return exact


async def _write_prepared(
    scope: TenantScope,
    items: list[tuple[int, EncounterCreate]],
    prepared: encounters.IntakeBatch,
    layout: parsing.CsvLayout | None,
    *,
    skew: timedelta,
) -> tuple[dict[int, dict[str, Any]], bool]:
    """Prepared encounter lines written in a savepoint with their audit events; taken again one by
    one if a concurrent writer stored one of their records first (then False: not what was prepared)."""
    mark = pending_mark(scope.session)
    savepoint = await scope.session.begin_nested()
    try:
        encounters.audit_created(scope, prepared)
        if prepared.rows:
            await encounters.write_encounters(scope, prepared, audit_since=mark)
    except IntegrityError:
        await savepoint.rollback()
        discard_pending_since(scope.session, mark)
        return await _one_by_one(scope, items, layout, skew=skew), False
    await savepoint.commit()
    return _outcomes(items, prepared, layout), True


async def _one_by_one(
    scope: TenantScope,
    items: list[tuple[int, EncounterCreate]],
    layout: parsing.CsvLayout | None,
    *,
    skew: timedelta,
) -> dict[int, dict[str, Any]]:
    return {
        number: await _run_line(scope, parsing.Parsed(encounter=data), layout, skew=skew)
        for number, data in items
    }


def _outcomes(
    items: list[tuple[int, EncounterCreate]],
    prepared: encounters.IntakeBatch,
    layout: parsing.CsvLayout | None,
) -> dict[int, dict[str, Any]]:
    return {
        number: _accepted(outcome.encounter.id)
        if isinstance(outcome, encounters.Prepared)
        else _refused(outcome, layout)
        for (number, _), outcome in zip(items, prepared.outcomes, strict=True)
    }


async def _run_encounters(
    scope: TenantScope,
    items: list[tuple[int, EncounterCreate]],
    layout: parsing.CsvLayout | None,
    *,
    skew: timedelta,
) -> dict[int, dict[str, Any]]:
    """Consecutive encounter lines as one intake batch: one lookup and one write for all of them, each
    line accepted or rejected exactly as on its own (``prepare_encounters`` resolves them in turn). The
    batch runs in a savepoint: if a concurrent writer (an API request, another job) created one of its
    patients, coverages, providers or external ids first, the write fails whole and the lines are taken
    again one by one, each finding what is committed by then."""
    if not items:
        return {}
    prepared = await encounters.prepare_encounters(
        scope, [data for _, data in items], scope.manifest, source="bulk", skew=skew, audit=False
    )
    outcomes, _ = await _write_prepared(scope, items, prepared, layout, skew=skew)
    return outcomes


async def _run_line(
    scope: TenantScope, parsed: parsing.Parsed, layout: parsing.CsvLayout | None, *, skew: timedelta
) -> dict[str, Any]:
    """One line on its own, in a savepoint (a Bundle line, or an encounter line taken again after its
    batch met a concurrent write)."""
    for attempt in (1, 2):
        mark = pending_mark(scope.session)
        savepoint = await scope.session.begin_nested()
        try:
            encounter_id = await _create(scope, parsed, skew=skew)
        except RCMError as exc:
            await savepoint.rollback()
            discard_pending_since(scope.session, mark)
            return _refused(exc, layout)
        except IntegrityError:
            # A concurrent writer (an API request, another job) created the same patient, coverage or
            # provider first: once its row is committed, the second attempt finds it instead of adding one.
            await savepoint.rollback()
            discard_pending_since(scope.session, mark)
            if attempt == 2:
                return _rejected(
                    [{"pointer": "", "detail": "conflicted twice with a concurrent write; resubmit"}]
                )
            continue
        await savepoint.commit()
        return _accepted(encounter_id)
    raise AssertionError("unreachable")


async def _create(scope: TenantScope, parsed: parsing.Parsed, *, skew: timedelta) -> uuid.UUID | None:
    if parsed.bundle is not None:
        ids = await ingest_bundle(scope, parsed.bundle)
        return ids[0] if ids else None
    assert parsed.encounter is not None
    created = await encounters.create_encounter(
        scope, parsed.encounter, scope.manifest, source="bulk", skew=skew
    )
    return created.id


def _refused(exc: RCMError, layout: parsing.CsvLayout | None) -> dict[str, Any]:
    errors = list(exc.errors) or [FieldError("", exc.detail)]
    return _rejected(layout.named(errors) if layout is not None else _plain(errors))


def _plain(errors: list[FieldError]) -> list[dict[str, str]]:
    return [{"pointer": e.pointer, "detail": e.detail} for e in errors]


def _accepted(encounter_id: uuid.UUID | None) -> dict[str, Any]:
    return {"outcome": LineOutcome.ACCEPTED, "encounter_id": encounter_id, "errors": None}


def _rejected(errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"outcome": LineOutcome.REJECTED, "encounter_id": None, "errors": errors}
