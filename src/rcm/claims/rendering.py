"""Rendering a submission batch as the 837 its payer receives, kept once.

``render_batch`` maps the batch's document (``batches.batch_document``: claims, lines, enrollment, payer)
and the claims' patients, coverages and rendering providers (PHI opened with the tenant's keys) into the
X12 layer's claim model, writes the interchange under the control numbers recorded on the batch, and keeps
the bytes (``rcm.interchanges``: encrypted, once per content, linked to the batch). The first render is the
file: rendering again returns it unchanged, so what is sent and re-sent is byte for byte the same, and the
batch row is locked while rendering so two renders never produce two files.

A batch holds one claim type (``batches``): an 837P, or an 837I whose claims carry their encounter's type
of bill (CLM05-1 takes its facility type code), statement period, admission, attending provider and the
lines' revenue codes (``parties.institutional_facts``). What the writer refuses (a delimiter in a value,
too many diagnoses, a total that is not the sum of its lines) is a 409 naming the segment and element, never
the value; nothing is kept then.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from rcm.blobs.store import BlobStore
from rcm.claims.batches import BatchDocument, batch_document
from rcm.claims.models import BatchStatus, Claim, ClaimLine
from rcm.claims.parties import Parties, batch_parties
from rcm.claims.repository import ClaimRepository
from rcm.claims.secondary import prior_payers
from rcm.claims.states import Frequency
from rcm.config import get_settings
from rcm.interchanges.models import Direction, X12File
from rcm.interchanges.repository import X12FileRepository
from rcm.interchanges.service import keep
from rcm.kit.errors import Conflict, FieldError, NotFound
from rcm.kit.secrets import SecretResolver, SecretUnavailable
from rcm.tenancy.manifest import TenantManifest
from rcm.tenancy.scope import TenantScope
from rcm.x12 import X12Error
from rcm.x12 import claims as x12
from rcm.x12.claims837 import write_837
from rcm.x12.model import Address, Envelope

# write_837 writes one transaction set per group, numbered 0001: the number batching records (ST02).
ST02 = "0001"


@dataclass(frozen=True, slots=True)
class Practice:
    """What the manifest (and its TIN, by reference) gives the envelope's parties."""

    address: Address
    tin: str
    submitter: x12.Submitter


async def render_batch(
    scope: TenantScope, store: BlobStore, batch_id: uuid.UUID, *, secrets: SecretResolver | None = None
) -> X12File:
    """The batch's outbound 837, rendered and kept the first time, returned as kept ever after."""
    batch = await scope.repo(ClaimRepository).lock_batch(batch_id)
    if batch is None:
        raise NotFound
    kept = await scope.repo(X12FileRepository).of_batch(batch_id, direction=Direction.OUTBOUND)
    if kept:
        return kept[0]
    if batch.status is not BatchStatus.PENDING:
        # A batch that left before files were kept: rendering it now could differ from what the payer has.
        raise Conflict(
            "Only a pending batch is rendered; this one has no kept file to return.",
            errors=[FieldError("/status", f"is {batch.status.value}")],
        )
    if batch.transaction_set_control_number != ST02:
        raise Conflict(
            "The batch's transaction set control number is not the writer's.",
            errors=[FieldError("/transaction_set_control_number", f"is not {ST02}")],
        )
    document = await batch_document(scope, batch_id)
    if not document.claims:
        raise Conflict(
            "None of the batch's claims is still ready: there is nothing to send.",
            errors=[FieldError("/claims", "none is ready")],
        )
    practice = practice_parties(scope.manifest, secrets or SecretResolver(get_settings().secrets_dir))
    parties = await prior_payers(scope, await batch_parties(scope, document), document.claims)
    try:
        data = write_837(claim_batch(document, practice, parties)).encode()
    except X12Error as error:
        raise Conflict(
            "The batch cannot be written as X12 5010: correct the named data and render again.",
            errors=[FieldError(_pointer(error), error.message)],
        ) from None
    row, _ = await keep(
        scope,
        store,
        data,
        direction=Direction.OUTBOUND,
        connector=batch.connector,
        batch_id=batch.id,
        patient_ids=sorted({claim.patient_id for claim, _ in document.claims}),
    )
    return row


def _pointer(error: X12Error) -> str:
    segment = error.segment_id or "ISA"
    return f"/x12/{segment}" + (f"{error.element:02d}" if error.element is not None else "")


def practice_parties(manifest: TenantManifest, secrets: SecretResolver) -> Practice:
    """The billing provider's address and TIN and the submitter's contact, from the manifest; every missing
    part named by its manifest pointer (the TIN's value never)."""
    errors: list[FieldError] = []
    address = manifest.address
    if address is None:
        errors.append(FieldError("/address", "is required to bill (837 2010AA N3/N4)"))
    elif len(address.postal_code) != 9:
        errors.append(FieldError("/address/postal_code", "needs nine digits (ZIP+4) to bill"))
    tin = ""
    if manifest.tin_reference is None:
        errors.append(FieldError("/tin_reference", "is required to bill (837 2010AA REF*EI)"))
    else:
        try:
            tin = secrets.resolve(manifest.tin_reference).get_secret_value().replace("-", "")
        except SecretUnavailable as exc:
            errors.append(FieldError("/tin_reference", str(exc)))
        else:
            if len(tin) != 9 or not tin.isdigit():
                errors.append(FieldError("/tin_reference", "does not hold nine digits"))
    contact = manifest.submitter_contact
    if contact is None:
        errors.append(FieldError("/submitter_contact", "is required to submit (837 1000A PER)"))
    if errors or address is None or contact is None:
        raise Conflict("The practice's manifest lacks what an 837 needs.", errors=errors)
    return Practice(
        address=Address(
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            state=address.state,
            postal_code=address.postal_code,
        ),
        tin=tin,
        submitter=x12.Submitter(
            name=manifest.billing_provider.name,
            identifier="",  # the enrollment's, set per batch
            contact_name=contact.name,
            phone=contact.phone,
            email=contact.email,
        ),
    )


def claim_batch(
    document: BatchDocument, practice: Practice, parties: dict[uuid.UUID, Parties]
) -> x12.ClaimBatch:
    """The writer's model of the batch: one billing provider (the manifest's), one subscriber loop per
    patient, coverage and responsibility, the claims in the batch's order."""
    batch, payer, billing = document.batch, document.payer, document.billing_provider
    x12_payer = x12.Payer(name=payer.name, payer_id=payer.id)
    loops: dict[tuple[uuid.UUID, uuid.UUID | None, str], list[tuple[Claim, Sequence[ClaimLine]]]] = {}
    for claim, lines in document.claims:
        loops.setdefault((claim.patient_id, claim.coverage_id, claim.responsibility.value), []).append(
            (claim, lines)
        )
    subscribers = []
    for members in loops.values():
        first = parties[members[0][0].id]
        subscribers.append(
            x12.SubscriberLoop(
                payer=x12_payer,
                subscriber=first.subscriber,
                patient=first.patient,
                claims=tuple(claim_of(claim, lines, parties[claim.id]) for claim, lines in members),
            )
        )
    submitter = practice.submitter
    receiver_name = payer.name if batch.receiver_id == payer.id else (batch.connector or batch.receiver_id)
    return x12.ClaimBatch(
        envelope=Envelope(
            sender_id=batch.sender_id,
            receiver_id=batch.receiver_id,
            interchange_control_number=batch.interchange_control_number,
            group_control_number=batch.group_control_number,
            # The batch's own time: rendering is a function of the batch, not of the clock.
            created=batch.created_at,
        ),
        # BHT03, echoed by the 999 and 277CA: the batch's id, opaque.
        reference=batch.id.hex,
        submitter=x12.Submitter(
            name=submitter.name,
            identifier=batch.sender_id,
            contact_name=submitter.contact_name,
            phone=submitter.phone,
            email=submitter.email,
        ),
        receiver=x12.Receiver(name=receiver_name, identifier=batch.receiver_id),
        billing_providers=(
            x12.BillingProvider(
                name=billing.name,
                npi=billing.npi,
                tin=practice.tin,
                address=practice.address,
                taxonomy=billing.taxonomy,
                subscribers=tuple(subscribers),
            ),
        ),
    )


def claim_of(claim: Claim, lines: Sequence[ClaimLine], parties: Parties) -> x12.Claim:
    """2300/2400 of one claim: CLM (frequency 7 and 8 carry REF*F8), HI, the claim's providers, the lines."""
    changes_another = claim.frequency != Frequency.ORIGINAL
    institutional = parties.institutional
    return x12.Claim(
        patient_control_number=claim.patient_control_number,
        total_charge=claim.total_charge_cents,
        # CLM05-1: the place of service (837P), or the facility type code of the type of bill (837I); the
        # type of bill's frequency digit is the claim's own (CLM05-3: original, replacement, void).
        place_of_service=(
            parties.type_of_bill[:2]
            if institutional is not None and parties.type_of_bill
            else claim.place_of_service
        ),
        institutional=institutional,
        diagnoses=tuple(claim.diagnoses),
        frequency=str(claim.frequency),
        payer_claim_control_number=claim.original_payer_claim_control_number if changes_another else None,
        rendering=parties.rendering,
        referring=parties.referring,
        service_facility=parties.service_facility,
        prior_authorization=parties.prior_authorization,
        other_subscribers=parties.other_subscribers,
        lines=tuple(
            x12.ServiceLine(
                charge=line.charge_cents,
                units=str(line.units),
                procedure=line.procedure_code,
                modifiers=tuple(line.modifiers),
                diagnosis_pointers=tuple(line.diagnosis_pointers),
                service_date=line.service_date,
                revenue_code=line.revenue_code if institutional is not None else None,
                # REF*6R: the 835 names the line back by it (unique within the claim).
                control_number=str(line.line_number),
                adjudications=parties.line_adjudications.get(line.line_number, ()),
            )
            for line in lines
        ),
    )
