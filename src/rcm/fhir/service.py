"""FHIR R4 intake: a Bundle's entries become the same records as the JSON API, through the same services.

``ingest_bundle`` is the one door (the HTTP route and bulk intake both use it):

1. read: stream the entries, validate each with its R4B model, keep facts (off the event loop);
2. resolve references (``urn:uuid``, ``Type/id``, contained ``#id``, conditional ``Type?identifier=s|v``);
3. write in dependency order — providers, patients, coverages, then encounters with what points at them
   (conditions, procedures, charge items, claims, notes) — each unit under a savepoint;
4. answer a transaction-response or batch-response Bundle, one entry per entry.

A transaction (or collection) is all or nothing: any failing entry refuses the request with an
OperationOutcome naming every failing entry and element, and the request's transaction rolls back. A batch
keeps what succeeded; each failed entry carries its own status and OperationOutcome.

Idempotent on resource identifiers: what an entry became is linked from its identifiers (and resource id),
so a resent bundle, even under another Idempotency-Key, finds its records (200) instead of creating them
(201). Encounters match by their external id as well, patients by MRN, providers by NPI, coverages by
member id, as the JSON intake does.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import timedelta

import anyio.to_thread

from rcm.audit.events import Action
from rcm.fhir._common import BUNDLE, BundleResult, EntryResult
from rcm.fhir._intake import Intake
from rcm.fhir.outcome import FhirRejected, overall_status
from rcm.fhir.reader import BundleMode, ParsedBundle, read_bundle
from rcm.patients import service as patients
from rcm.tenancy.scope import TenantScope

__all__ = ["BUNDLE", "BundleMode", "BundleResult", "EntryResult", "apply_bundle", "ingest_bundle"]


async def ingest_bundle(
    scope: TenantScope,
    bundle: bytes | Iterable[bytes],
    *,
    mode: BundleMode | None = None,
    skew: timedelta = patients.DEFAULT_DATE_SKEW,
) -> BundleResult:
    """Read ``bundle`` (off the event loop) and apply it in ``scope``'s transaction.

    ``mode`` overrides the bundle's own type (bulk intake applies each NDJSON line as it decides). Raises
    ``FhirRejected`` for an unreadable bundle or a failing transaction; the caller's transaction must then
    roll back (the request boundary does).
    """
    parsed = await anyio.to_thread.run_sync(functools.partial(read_bundle, bundle, mode=mode))
    return await apply_bundle(scope, parsed, skew=skew)


async def apply_bundle(
    scope: TenantScope, parsed: ParsedBundle, *, skew: timedelta = patients.DEFAULT_DATE_SKEW
) -> BundleResult:
    # A transaction with unreadable entries still runs the rest (then rolls back), so one answer names
    # every failing entry: the invalid elements and the broken rules alike.
    intake = Intake(scope, parsed, skew)
    await intake.run()
    if parsed.mode is BundleMode.TRANSACTION and intake.errors:
        raise FhirRejected(overall_status(intake.errors), intake.errors)
    result = intake.result()
    scope.audit(
        "fhir_bundle.ingest",
        Action.CREATE,
        resource_type=BUNDLE,
        resource_ids=result.resource_ids,
        patient_ids=result.patient_ids,
        detail={
            "mode": parsed.mode.value,
            "entries": len(parsed.entries),
            "created": result.created,
            "failed": result.failed,
            "skipped": len(result.skipped),
        },
    )
    return result
