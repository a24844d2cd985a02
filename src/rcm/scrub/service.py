"""Scrub an encounter: one read of everything the rules need, reference data looked up once per date of
service, every rule run in memory, then (unless a dry run) the run and its results written, the billing
item opened, kept or resolved, and the access audited, all in the request's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from rcm.audit.events import Action
from rcm.claims.building import claims_for_clean_scrub
from rcm.claims.repository import ClaimRepository
from rcm.idempotency.service import carry_response
from rcm.kit.errors import Conflict, FieldError, NotFound
from rcm.kit.secrets import SecretResolver, SecretUnavailable
from rcm.patients.models import Patient
from rcm.scrub import institutional as _institutional  # noqa: F401 - registers the 837I edits
from rcm.scrub import schemas
from rcm.scrub.conditions import manifest_rule
from rcm.scrub.inputs import ScrubInput
from rcm.scrub.models import ScrubOutcome, ScrubResult, ScrubRun
from rcm.scrub.reference import CodeKind, CodeSetReference, NotLoaded, ReferenceData, procedure_kind
from rcm.scrub.repository import BillingItemRepository, ScrubInputRepository, ScrubRunRepository
from rcm.scrub.rules import (
    Finding,
    Rule,
    RuleSource,
    RuleSpec,
    RuleStatus,
    ScrubContext,
    Verdict,
    builtin_rules,
)
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.scope import TenantScope
from rcm.tenancy.scrub_rules import RuleSeverity
from rcm.tenancy.vocabulary import ClaimType
from rcm.workqueue import service as workqueue
from rcm.workqueue.models import BillingReason, QueueKind, SubjectType, WorkItem, WorkItemEvent

ENCOUNTER = "encounter"
SCRUB_RUN = "scrub_run"
BILLING_SLA = timedelta(hours=24)
PRIORITY = {ScrubOutcome.FAILED: 3, ScrubOutcome.INCOMPLETE: 5}  # lower is sooner


def reference_data(scope: TenantScope, data: ScrubInput) -> ReferenceData:
    """The reference data of this server: the code-set package, read in the scope's transaction (which
    sets are loaded came with the encounter's read)."""
    return CodeSetReference(scope.session, starts=data.code_set_starts)


async def load_scrub_input(scope: TenantScope, encounter_id: uuid.UUID, *, lock: bool = False) -> ScrubInput:
    """The coded encounter the rules judge (today: the encounter's own diagnoses and lines).

    The ONE door to what is scrubbed: when coders' edits live elsewhere, this is what is repointed."""
    data = await scope.repo(ScrubInputRepository).load(encounter_id, lock=lock)
    if data is None:
        raise NotFound
    return data


def rules_for(manifest: TenantManifest, claim_type: ClaimType = ClaimType.PROFESSIONAL) -> tuple[Rule, ...]:
    """The built-in rules for the encounter's claim type (the 837I edits on institutional ones), then the
    practice's own, in the order they are declared."""
    return builtin_rules(claim_type) + tuple(manifest_rule(declared) for declared in manifest.scrub_rules)


async def _lookups(ctx: ScrubContext, reference: ReferenceData) -> None:
    """Reference data for every date of service: one round trip per kind and date (usually one date)."""
    for day in ctx.input.service_dates:
        lines = ctx.lines_on(day)
        procedures = list(dict.fromkeys(line.procedure_code for line in lines))
        items: list[tuple[str, str]] = [(CodeKind.ICD10CM.value, d.code) for d in ctx.input.diagnoses]
        items += [(procedure_kind(code).value, code) for code in procedures]
        modifiers = dict.fromkeys(m for line in lines for m in line.modifiers)
        # The place of service is a dated code set too (POS-VALID), checked in the same round trip.
        places = [(CodeKind.POS.value, ctx.input.place_of_service)] if day == ctx.input.service_date else []
        ctx.codes[day] = await reference.check_codes(
            [*items, *((CodeKind.MODIFIER.value, m) for m in modifiers), *places], day
        )
        ctx.ptp[day] = await reference.ncci_pairs(procedures, day) if len(procedures) > 1 else []
        ctx.mue[day] = await reference.mue_limits(procedures, day) if procedures else {}
        ctx.sex_age[day] = await reference.sex_age_edits(items, day)


def _needs_birth_date(ctx: ScrubContext) -> bool:
    return any(
        not isinstance(edits, NotLoaded)
        and any(e.min_age_years is not None or e.max_age_years is not None for e in edits)
        for edits in ctx.sex_age.values()
    )


def _outcome(results: Sequence[tuple[RuleSpec, Verdict]]) -> ScrubOutcome:
    errors = [verdict.status for spec, verdict in results if spec.severity is RuleSeverity.ERROR]
    if RuleStatus.FIRED in errors:
        return ScrubOutcome.FAILED
    if RuleStatus.NOT_CHECKED in errors:
        return ScrubOutcome.INCOMPLETE
    return ScrubOutcome.CLEAN


def _count(
    results: Sequence[tuple[RuleSpec, Verdict]], status: RuleStatus, severity: RuleSeverity | None
) -> int:
    return sum(
        1 for spec, v in results if v.status is status and (severity is None or spec.severity is severity)
    )


async def scrub_encounter(
    scope: TenantScope,
    encounter_id: uuid.UUID,
    *,
    dry_run: bool,
    secrets: SecretResolver,
    reference: ReferenceData | None = None,
    today: date | None = None,
    latest: date | None = None,
) -> schemas.ScrubReport:
    """Run every rule over the encounter. A dry run writes nothing but its audit event (the birth date it
    may have read is PHI). ``latest`` is the last plausible date of service (today plus the time zone's
    skew)."""
    now = datetime.now(UTC)
    today = today or now.date()
    data = await load_scrub_input(scope, encounter_id, lock=not dry_run)
    if data.status == "cancelled":
        # A cancelled encounter is never billed: scrubbing it would open a billing item for nothing.
        raise Conflict(
            "A cancelled encounter is not scrubbed.",
            errors=[FieldError("/status", "is cancelled")],
        )
    ctx = ScrubContext(data, scope.manifest, today, latest=latest or today)
    if scope.manifest.tin_reference is not None:
        try:
            ctx.tin = secrets.resolve(scope.manifest.tin_reference)
        except SecretUnavailable as exc:
            ctx.tin = exc
    await _lookups(ctx, reference or reference_data(scope, data))
    read_birth_date = _needs_birth_date(ctx)
    if read_birth_date:
        value = scope.keyring.decrypt_str(
            table=Patient.__tablename__,
            column="birth_date",
            row_id=data.patient_id,
            ciphertext=data.birth_date_sealed,
        )
        data.birth_date = date.fromisoformat(value or "")
    results = [(rule.spec, rule.check(ctx)) for rule in rules_for(scope.manifest, data.claim_type)]
    outcome = _outcome(results)
    run_id = None if dry_run else uuid.uuid4()
    work_item_id, new_item = (
        (None, None) if dry_run else await _billing_item(scope, encounter_id, outcome, now)
    )
    # A clean scrub builds the encounter's claim (once: scrubbing again finds it). Its statements run
    # before the run's one write: they are a clean scrub's only extra round trips.
    claim_id = (
        await claims_for_clean_scrub(scope, data, now=now)
        if run_id is not None and outcome is ScrubOutcome.CLEAN
        else None
    )
    scope.audit(
        "encounter.scrub",
        Action.EXECUTE,
        resource_type=ENCOUNTER,
        resource_ids=[encounter_id, *([run_id] if run_id else [])],
        patient_ids=[data.patient_id],
        detail={
            "dry_run": dry_run,
            "outcome": outcome.value,
            "errors": _count(results, RuleStatus.FIRED, RuleSeverity.ERROR),
            "not_checked": _count(results, RuleStatus.NOT_CHECKED, None),
            "phi_read": "birth_date" if read_birth_date else None,
        },
    )
    report = _report(
        encounter_id,
        patient_id=data.patient_id,
        outcome=outcome,
        dry_run=dry_run,
        at=now,
        results=results,
        run_id=run_id,
        work_item_id=work_item_id,
        claim_id=claim_id,
    )
    if run_id is not None:
        # The run, its results, the new billing item, the audit event and the idempotent answer: ONE
        # statement (a dry run's audit event is written at commit).
        rows = _run_rows(
            scope,
            run_id=run_id,
            encounter_id=encounter_id,
            outcome=outcome,
            work_item_id=work_item_id,
            results=results,
            now=now,
        )
        if new_item is not None:
            created = workqueue.created_event(new_item, actor=scope.principal.subject)
            rows = [new_item, created, *rows]
        await scope.repo(ScrubRunRepository).write(rows, response=carry_response(scope, 201, report))
    return report


async def _billing_item(
    scope: TenantScope, encounter_id: uuid.UUID, outcome: ScrubOutcome, now: datetime
) -> tuple[uuid.UUID | None, WorkItem | None]:
    """Failed or incomplete: the encounter's one live billing item (kept, or a new one for the caller to
    write). Clean: the live item, if any, is resolved. The encounter row is locked, so two scrubs never
    both open one."""
    items = scope.repo(BillingItemRepository)
    live = await items.live_item(encounter_id)
    if outcome is ScrubOutcome.CLEAN:
        if live is not None:
            await items.complete_live(encounter_id, actor=scope.principal.subject)
        return None, None
    if live is not None:
        return live.id, None
    item = workqueue.new_item(
        kind=QueueKind.BILLING,
        subject_type=SubjectType.ENCOUNTER,
        subject_id=encounter_id,
        due_at=now + BILLING_SLA,
        priority=PRIORITY[outcome],
        created_at=now,
        reason=BillingReason.SCRUB_FAILURE,
    )
    return item.id, item


def _run_rows(
    scope: TenantScope,
    *,
    run_id: uuid.UUID,
    encounter_id: uuid.UUID,
    outcome: ScrubOutcome,
    work_item_id: uuid.UUID | None,
    results: Sequence[tuple[RuleSpec, Verdict]],
    now: datetime,
) -> list[WorkItem | WorkItemEvent | ScrubRun | ScrubResult]:
    """The stored run (passed rules folded into it) and one result row per rule that did not pass."""
    passed = [
        {
            "position": position,
            "id": spec.id,
            "version": spec.version,
            "source": spec.source.value,
            "severity": spec.severity.value,
            "title": spec.title,
            "looked_at": list(verdict.looked_at),
        }
        for position, (spec, verdict) in enumerate(results, start=1)
        if verdict.status is RuleStatus.PASSED
    ]
    run = ScrubRun(
        id=run_id,
        encounter_id=encounter_id,
        outcome=outcome,
        errors=_count(results, RuleStatus.FIRED, RuleSeverity.ERROR),
        warnings=_count(results, RuleStatus.FIRED, RuleSeverity.WARNING),
        not_checked=_count(results, RuleStatus.NOT_CHECKED, None),
        actor=scope.principal.subject,
        work_item_id=work_item_id,
        passed=passed,
        created_at=now,
    )
    return [
        run,
        *(
            ScrubResult(
                id=uuid.uuid4(),
                scrub_run_id=run_id,
                position=position,
                rule_id=spec.id,
                rule_version=spec.version,
                source=spec.source,
                severity=spec.severity,
                status=verdict.status,
                title=spec.title,
                findings=[{"message": f.message, "line_number": f.line_number} for f in verdict.findings],
                looked_at=list(verdict.looked_at),
                reason=verdict.reason,
                created_at=now,
            )
            for position, (spec, verdict) in enumerate(results, start=1)
            if verdict.status is not RuleStatus.PASSED
        ),
    ]


def _report(
    encounter_id: uuid.UUID,
    *,
    patient_id: uuid.UUID,
    outcome: ScrubOutcome,
    dry_run: bool,
    at: datetime,
    results: Sequence[tuple[RuleSpec, Verdict]],
    run_id: uuid.UUID | None,
    work_item_id: uuid.UUID | None,
    claim_id: uuid.UUID | None = None,
) -> schemas.ScrubReport:
    rules = [
        schemas.RuleReport(
            rule=spec.key,
            id=spec.id,
            version=spec.version,
            source=spec.source,
            severity=spec.severity,
            status=verdict.status,
            title=spec.title,
            findings=[schemas.Finding(f.message, f.line_number) for f in verdict.findings],
            looked_at=list(verdict.looked_at),
            reason=verdict.reason,
        )
        for spec, verdict in results
    ]
    return schemas.ScrubReport(
        id=run_id,
        encounter_id=encounter_id,
        patient_id=patient_id,
        outcome=outcome,
        dry_run=dry_run,
        scrubbed_at=at,
        errors=_count(results, RuleStatus.FIRED, RuleSeverity.ERROR),
        warnings=_count(results, RuleStatus.FIRED, RuleSeverity.WARNING),
        not_checked=_count(results, RuleStatus.NOT_CHECKED, None),
        fired=[r.rule for r in rules if r.status is RuleStatus.FIRED],
        not_checked_rules=[r.rule for r in rules if r.status is RuleStatus.NOT_CHECKED],
        rules=rules,
        work_item_id=work_item_id,
        claim_id=claim_id,
    )


async def latest_scrub(scope: TenantScope, encounter_id: uuid.UUID) -> schemas.ScrubReport:
    """The encounter's last stored scrub (404 when it was never scrubbed, or is not this practice's)."""
    found = await scope.repo(ScrubRunRepository).latest(encounter_id)
    if found is None:
        raise NotFound
    run, rows = found
    ordered: list[tuple[int, RuleSpec, Verdict]] = [
        (
            row.position,
            RuleSpec(row.rule_id, row.rule_version, row.severity, row.title, source=row.source),
            Verdict(row.status, tuple(_finding(f) for f in row.findings), tuple(row.looked_at), row.reason),
        )
        for row in rows
    ]
    ordered += [
        (
            int(item["position"]),
            RuleSpec(
                str(item["id"]),
                str(item["version"]),
                RuleSeverity(item["severity"]),
                str(item["title"]),
                source=RuleSource(item["source"]),
            ),
            Verdict(RuleStatus.PASSED, looked_at=tuple(str(x) for x in item["looked_at"])),
        )
        for item in run.passed
    ]
    results = [(spec, verdict) for _, spec, verdict in sorted(ordered, key=lambda entry: entry[0])]
    patient_id = await scope.repo(ScrubInputRepository).patient_of(encounter_id)
    if patient_id is None:
        raise NotFound
    scope.audit(
        "scrub_run.read",
        Action.READ,
        resource_type=SCRUB_RUN,
        resource_ids=[run.id],
        patient_ids=[patient_id],
    )
    return _report(
        encounter_id,
        patient_id=patient_id,
        outcome=run.outcome,
        dry_run=False,
        at=run.created_at,
        results=results,
        run_id=run.id,
        work_item_id=run.work_item_id,
        # The claim a clean run built (or found built): the same answer its POST gave.
        claim_id=(
            await scope.repo(ClaimRepository).first_original(encounter_id)
            if run.outcome is ScrubOutcome.CLEAN
            else None
        ),
    )


def _finding(stored: dict[str, object]) -> Finding:
    line = stored.get("line_number")
    return Finding(str(stored.get("message", "")), line if isinstance(line, int) else None)
