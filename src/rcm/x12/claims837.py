"""Writing a ``ClaimBatch`` as X12: 837P (005010X222A1) and 837I (005010X223A2) in one interchange.

Layout: one functional group per guide (GS08 names the guide, so professional and institutional claims cannot
share a group), one transaction set per group holding every billing provider of the batch as its own 2000A
loop (the guides let 2000A repeat), and under each the 2000B subscriber loops (one payer each) with the 2000C
patient loop when the patient is not the subscriber. HL numbers run 1, 2, 3... through the transaction set,
each child naming its parent in HL02. Segment order within each loop follows the guides (pyx12 checks it).

The writer refuses what X12 cannot say (a value holding a delimiter, more diagnoses than HI holds, a total
that is not the sum of the lines, a replacement without the payer's claim number): a batch is either written
whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator

from rcm.x12.claims import BillingProvider, Claim, ClaimBatch, ServiceFacility, ServiceLine, SubscriberLoop
from rcm.x12.errors import X12Error
from rcm.x12.model import Provider, d8, n3_n4, write_nm1
from rcm.x12.other_payers import (
    check_other_subscribers,
    payer_nm1,
    write_line_adjudications,
    write_other_subscribers,
)
from rcm.x12.writer import TransactionWriter, amount, text

GUIDES = {"837P": "005010X222A1", "837I": "005010X223A2"}
# HI holds twelve codes; 837P has one diagnosis HI, 837I one principal and up to two other-diagnosis HIs.
MAX_DIAGNOSES = {"837P": 12, "837I": 25}
MAX_MODIFIERS = 4
MAX_POINTERS = 4


def write_837(batch: ClaimBatch) -> str:
    """The batch as one interchange: 837P claims in one group, 837I claims in the next."""
    envelope = batch.envelope
    writer = envelope.writer()
    control = envelope.group_control_number
    written = 0
    for kind, guide in GUIDES.items():
        providers = list(_of_kind(batch.billing_providers, kind))
        if not providers:
            continue
        with (
            writer.group(
                functional_id="HC",
                sender=envelope.sender_id,
                receiver=envelope.receiver_id,
                control_number=control,
                version=guide,
            ) as group,
            group.transaction("837", 1) as body,
        ):
            _header(body, batch)
            hl = _Hierarchy()
            for provider in providers:
                written += _billing_provider(body, hl, provider, kind)
        control += 1
    if not written:
        raise X12Error("a claim batch needs at least one claim", segment_id="CLM")
    return writer.finish()


def _of_kind(providers: tuple[BillingProvider, ...], kind: str) -> Iterator[BillingProvider]:
    """Each billing provider with only its claims of ``kind`` (837P or 837I); those left with none dropped."""
    for provider in providers:
        loops = []
        for loop in provider.subscribers:
            if not loop.claims:
                raise X12Error("a subscriber loop needs at least one claim", segment_id="HL")
            claims = tuple(claim for claim in loop.claims if claim.kind == kind)
            if claims:
                loops.append(loop if len(claims) == len(loop.claims) else _with_claims(loop, claims))
        if loops:
            yield _with_subscribers(provider, tuple(loops))


def _with_claims(loop: SubscriberLoop, claims: tuple[Claim, ...]) -> SubscriberLoop:
    return SubscriberLoop(payer=loop.payer, subscriber=loop.subscriber, claims=claims, patient=loop.patient)


def _with_subscribers(provider: BillingProvider, loops: tuple[SubscriberLoop, ...]) -> BillingProvider:
    return BillingProvider(
        name=provider.name,
        npi=provider.npi,
        tin=provider.tin,
        address=provider.address,
        subscribers=loops,
        taxonomy=provider.taxonomy,
        pay_to=provider.pay_to,
    )


class _Hierarchy:
    """HL01 numbers: the next id, and who the parent is."""

    def __init__(self) -> None:
        self.last = 0

    def open(self, body: TransactionWriter, parent: int | None, level: str, has_children: bool) -> int:
        self.last += 1
        body.segment("HL", self.last, parent, level, "1" if has_children else "0")
        return self.last


def _header(body: TransactionWriter, batch: ClaimBatch) -> None:
    created = batch.envelope.created
    delimiters = body.delimiters
    # BHT02 00 original; BHT06 CH chargeable (claims) or RP reporting (encounters).
    body.segment(
        "BHT", "0019", "00", batch.reference, d8(created), created.strftime("%H%M"), batch.transaction_type
    )
    submitter = batch.submitter
    body.segment(
        "NM1",
        "41",
        "2",
        text(submitter.name, delimiters, max_length=60),
        *_blank(4),
        "46",
        submitter.identifier,
    )
    if not (submitter.phone or submitter.email):
        raise X12Error("the submitter contact needs a phone number or an email address", segment_id="PER")
    contact: list[str | None] = ["IC", text(submitter.contact_name, delimiters, max_length=60)]
    for qualifier, value in (("TE", submitter.phone), ("EM", submitter.email)):
        if value:
            contact += [qualifier, value]
    body.segment("PER", *contact)
    receiver = batch.receiver
    body.segment(
        "NM1",
        "40",
        "2",
        text(receiver.name, delimiters, max_length=60),
        *_blank(4),
        "46",
        receiver.identifier,
    )


def _blank(count: int) -> list[None]:
    return [None] * count


def _billing_provider(body: TransactionWriter, hl: _Hierarchy, provider: BillingProvider, kind: str) -> int:
    delimiters = body.delimiters
    postal = provider.address.postal_code
    if len(postal) != 9 or not postal.isdigit():
        # 2010AA N403: the nine-digit ZIP+4; payers reject a billing provider without it.
        raise X12Error("the billing provider's ZIP code must have nine digits", segment_id="N4", element=3)
    parent = hl.open(body, None, "20", True)
    if provider.taxonomy:
        body.segment("PRV", "BI", "PXC", provider.taxonomy)
    body.segment(
        "NM1", "85", "2", text(provider.name, delimiters, max_length=60), *_blank(4), "XX", provider.npi
    )
    n3_n4(body, provider.address)
    body.segment("REF", "EI", provider.tin)
    if provider.pay_to is not None:
        body.segment("NM1", "87", "2")
        n3_n4(body, provider.pay_to)
    claims = 0
    for loop in provider.subscribers:
        claims += _subscriber(body, hl, parent, loop, kind)
    return claims


def _subscriber(body: TransactionWriter, hl: _Hierarchy, parent: int, loop: SubscriberLoop, kind: str) -> int:
    delimiters = body.delimiters
    subscriber = loop.subscriber
    patient = loop.patient
    if patient is None and (
        subscriber.address is None or subscriber.birth_date is None or not subscriber.sex
    ):
        # 2010BA N3, N4 and DMG are required when the subscriber is the patient.
        raise X12Error(
            "the subscriber is the patient: address, birth date and sex are required", segment_id="DMG"
        )
    own = hl.open(body, parent, "22", patient is not None)
    # SBR02 18 (self) only when the subscriber is the patient; otherwise the relationship is PAT01 in 2000C.
    body.segment(
        "SBR",
        subscriber.responsibility,
        "18" if patient is None else None,
        subscriber.group_number,
        text(subscriber.group_name, delimiters, max_length=60),
        *_blank(4),
        subscriber.claim_filing_indicator,
    )
    write_nm1(body, "IL", subscriber.name, "MI", subscriber.member_id)
    if subscriber.address is not None:
        n3_n4(body, subscriber.address)
    if subscriber.birth_date is not None:
        body.segment("DMG", "D8", d8(subscriber.birth_date), subscriber.sex)
    payer_nm1(body, loop.payer)
    if patient is not None:
        hl.open(body, own, "23", False)
        body.segment("PAT", patient.relationship)
        write_nm1(body, "QC", patient.name)
        n3_n4(body, patient.address)
        body.segment("DMG", "D8", d8(patient.birth_date), patient.sex)
    for claim in loop.claims:
        if kind == "837I":
            from rcm.x12.institutional import write_institutional_claim

            write_institutional_claim(body, claim)
        else:
            _professional_claim(body, claim)
    return len(loop.claims)


def provider_nm1(
    body: TransactionWriter, entity: str, provider: Provider, prv: str | None = None, *, person: bool = False
) -> None:
    """NM1 of a named provider (XX NPI), and its PRV taxonomy when the loop carries one (``prv`` code).

    ``person``: the loop names a person only (referring; attending and rendering in the 837I)."""
    if provider.organization and person:
        raise X12Error("this provider loop names a person, not an organization", segment_id="NM1", element=2)
    write_nm1(body, entity, provider, "XX", provider.npi)
    if prv is not None and provider.taxonomy:
        body.segment("PRV", prv, "PXC", provider.taxonomy)


def service_facility(body: TransactionWriter, facility: ServiceFacility) -> None:
    """2310C (837P) / 2310E (837I): NM1*77 (NPI when the facility has one of its own), N3, N4."""
    name = text(facility.name, body.delimiters, max_length=60)
    body.segment("NM1", "77", "2", name, *_blank(4), "XX" if facility.npi else None, facility.npi)
    n3_n4(body, facility.address)


def check_claim(claim: Claim, kind: str) -> None:
    """What the writer refuses for any 837 claim (the guides' rules a payer would reject the batch for)."""
    if not claim.lines:
        raise X12Error("a claim needs at least one service line", segment_id="LX")
    if sum(line.charge for line in claim.lines) != claim.total_charge:
        raise X12Error("the claim total is not the sum of its line charges", segment_id="CLM", element=2)
    if claim.frequency not in ("1", "7", "8"):
        raise X12Error("claim frequency must be 1, 7 or 8", segment_id="CLM", element=5)
    if claim.frequency in ("7", "8") and not claim.payer_claim_control_number:
        raise X12Error(
            "a replacement or void needs the payer's claim control number (REF*F8)", segment_id="REF"
        )
    if not claim.diagnoses or len(claim.diagnoses) > MAX_DIAGNOSES[kind]:
        raise X12Error(f"a claim carries 1 to {MAX_DIAGNOSES[kind]} diagnoses", segment_id="HI")
    for line in claim.lines:
        if len(line.modifiers) > MAX_MODIFIERS:
            raise X12Error("a service line carries at most four modifiers", segment_id="SV1")
    check_other_subscribers(claim)


def diagnosis(code: str) -> str:
    """ICD-10-CM as X12 writes it: without the dot."""
    return code.replace(".", "")


def references(body: TransactionWriter, claim: Claim) -> None:
    """2300 REF segments, in the guide's order: prior authorization (G1) before payer claim number (F8)."""
    if claim.prior_authorization:
        body.segment("REF", "G1", claim.prior_authorization)
    if claim.payer_claim_control_number:
        body.segment("REF", "F8", claim.payer_claim_control_number)


def procedure(line: ServiceLine) -> tuple[str | None, ...]:
    """SV101 / SV202: HC:code:modifiers."""
    return ("HC", line.procedure, *line.modifiers)


def service_date(body: TransactionWriter, line: ServiceLine) -> None:
    if line.service_date is None:
        return
    if line.service_date_end is not None and line.service_date_end != line.service_date:
        body.segment("DTP", "472", "RD8", f"{d8(line.service_date)}-{d8(line.service_date_end)}")
    else:
        body.segment("DTP", "472", "D8", d8(line.service_date))


def _professional_claim(body: TransactionWriter, claim: Claim) -> None:
    check_claim(claim, "837P")
    body.segment(
        "CLM",
        claim.patient_control_number,
        amount(claim.total_charge),
        None,
        None,
        (claim.place_of_service, "B", claim.frequency),
        "Y" if claim.provider_signature else "N",
        claim.assignment,
        claim.benefits_assigned,
        claim.release_of_information,
    )
    references(body, claim)
    codes = [diagnosis(code) for code in claim.diagnoses]
    body.segment("HI", ("ABK", codes[0]), *[("ABF", code) for code in codes[1:]])
    if claim.referring is not None:
        provider_nm1(body, "DN", claim.referring, person=True)
    if claim.rendering is not None:
        provider_nm1(body, "82", claim.rendering, "PE")
    if claim.service_facility is not None:
        service_facility(body, claim.service_facility)
    write_other_subscribers(body, claim)
    for number, line in enumerate(claim.lines, start=1):
        if not line.procedure:
            raise X12Error("a professional service line needs a procedure code", segment_id="SV1", element=1)
        if len(line.diagnosis_pointers) > MAX_POINTERS:
            raise X12Error("a service line points to at most four diagnoses", segment_id="SV1", element=7)
        body.segment("LX", number)
        body.segment(
            "SV1",
            procedure(line),
            amount(line.charge),
            "UN",
            line.units,
            line.place_of_service,
            None,
            tuple(str(pointer) for pointer in line.diagnosis_pointers),
        )
        service_date(body, line)
        if line.control_number:
            body.segment("REF", "6R", line.control_number)
        if line.rendering is not None:
            provider_nm1(body, "82", line.rendering, "PE")
        if line.referring is not None:
            provider_nm1(body, "DN", line.referring, person=True)
        write_line_adjudications(body, line)
