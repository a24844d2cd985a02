"""The 277CA claim acknowledgment (005010X214): which claims of a file the payer (or clearinghouse) accepted
into adjudication and which it rejected, and why (STC category and status codes, free text).

The hierarchy: information source (HL 20: the payer, with the receipt trace and dates), information receiver
(HL 21: the submitter, with the batch's status and totals), billing provider (HL 19), patient (HL PT) and
each claim's status (TRN*2 with the patient control number, STC, REF*1K payer claim control number, DTP
service dates, service lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime

import msgspec

from rcm.x12.document import Finding
from rcm.x12.envelope import Transaction
from rcm.x12.errors import X12Error
from rcm.x12.remittance_model import Person, Reference
from rcm.x12.remittance_writer import write_person
from rcm.x12.statuses import (
    ClaimStatus,
    Hierarchy,
    Level,
    Status,
    children,
    claims,
    d8,
    first,
    hierarchy,
    person,
    statuses,
    write_claim,
    write_status,
)
from rcm.x12.values import cents, date8
from rcm.x12.writer import Party, TransactionWriter, amount, single_group_interchange

IMPLEMENTATION = "005010X214"
# STC action codes: WQ accepted, U rejected (X214 1.4).
ACCEPT, REJECT = "WQ", "U"


class Totals(msgspec.Struct, frozen=True, kw_only=True):
    """QTY and AMT of a receiver (QTY*90/AA) or a provider (QTY*QA/QC): accepted and rejected."""

    accepted_count: int | None = None
    rejected_count: int | None = None
    accepted_amount: int | None = None  # AMT*YU
    rejected_amount: int | None = None  # AMT*YY


class PatientAck(msgspec.Struct, frozen=True, kw_only=True):
    """HL PT: the patient (NM1*QC) and the status of each of their claims."""

    patient: Person
    claims: tuple[ClaimStatus, ...] = ()


class ProviderAck(msgspec.Struct, frozen=True, kw_only=True):
    """HL 19: the billing provider (NM1*85), its trace (TRN*1), statuses, totals, patients."""

    provider: Person
    trace: str
    statuses: tuple[Status, ...]
    reference: Reference | None = None
    totals: Totals = Totals()
    patients: tuple[PatientAck, ...] = ()


class ReceiverAck(msgspec.Struct, frozen=True, kw_only=True):
    """HL 21: the information receiver (NM1*41, the submitter), the batch's trace, status and totals."""

    receiver: Person
    trace: str  # TRN*2: the submitter's batch (BHT03 of the 837)
    statuses: tuple[Status, ...]
    totals: Totals = Totals()
    providers: tuple[ProviderAck, ...] = ()


class SourceAck(msgspec.Struct, frozen=True, kw_only=True):
    """HL 20: the information source (NM1*PR payer or AY clearinghouse), the receipt trace and dates."""

    source: Person
    source_qualifier: str = "PR"  # NM101: PR payer, AY clearinghouse
    trace: str  # TRN*1
    received: date  # DTP*050
    processed: date  # DTP*009
    receivers: tuple[ReceiverAck, ...] = ()


class ClaimAcknowledgment(msgspec.Struct, frozen=True, kw_only=True):
    """One 277CA transaction set."""

    reference: str  # BHT03
    created: date  # BHT04
    time: str  # BHT05 (HHMM, HHMMSS...)
    sources: tuple[SourceAck, ...]

    def all_claims(self) -> Iterator[ClaimStatus]:
        for source in self.sources:
            for receiver in source.receivers:
                for provider in receiver.providers:
                    for patient in provider.patients:
                        yield from patient.claims


# -- reading
def _trace(level: Level, kind: str) -> str:
    trn = first(level, "TRN", kind)
    if trn is None or not trn[2]:
        raise X12Error("the level has no TRN trace", segment_id="TRN", position=level.hl.index)
    return trn[2]


def _count(level: Level, qualifier: str) -> int | None:
    qty = first(level, "QTY", qualifier)
    if qty is None:
        return None
    raw = qty[2]
    if not raw.isdigit():
        raise X12Error("not a whole number", segment_id="QTY", element=2, position=qty.index)
    return int(raw)


def _amount(level: Level, qualifier: str) -> int | None:
    amt = first(level, "AMT", qualifier)
    return None if amt is None else cents(amt, 2)


def _date(level: Level, qualifier: str) -> date:
    dtp = first(level, "DTP", qualifier)
    if dtp is None:
        raise X12Error("the information source has no DTP date", segment_id="DTP", position=level.hl.index)
    value = date8(dtp, 3)
    assert value is not None
    return value


def _totals(level: Level, accepted: str, rejected: str) -> Totals:
    return Totals(
        accepted_count=_count(level, accepted),
        rejected_count=_count(level, rejected),
        accepted_amount=_amount(level, "YU"),
        rejected_amount=_amount(level, "YY"),
    )


def read(transaction: Transaction) -> ClaimAcknowledgment:
    component = transaction.delimiters.component
    bht, roots = hierarchy(transaction, "0085")
    sources = []
    for root in roots:
        if root.code != "20":
            raise X12Error(
                "the top level is not an information source (HL 20)", segment_id="HL", position=root.hl.index
            )
        qualifier = "AY" if first(root, "NM1", "AY") is not None else "PR"
        receivers = []
        for receiver in children(root, "21"):
            providers = []
            for provider in children(receiver, "19"):
                patients = [
                    PatientAck(patient=person(patient, "QC"), claims=claims(patient.segments, component))
                    for patient in children(provider, "PT")
                ]
                ref = next((s for s in provider.segments if s.id == "REF"), None)
                providers.append(
                    ProviderAck(
                        provider=person(provider, "85"),
                        trace=_trace(provider, "1"),
                        statuses=statuses(provider, component),
                        reference=None if ref is None else Reference(ref[1], ref[2]),
                        totals=_totals(provider, "QA", "QC"),
                        patients=tuple(patients),
                    )
                )
            receivers.append(
                ReceiverAck(
                    receiver=person(receiver, "41"),
                    trace=_trace(receiver, "2"),
                    statuses=statuses(receiver, component),
                    totals=_totals(receiver, "90", "AA"),
                    providers=tuple(providers),
                )
            )
        sources.append(
            SourceAck(
                source=person(root, qualifier),
                source_qualifier=qualifier,
                trace=_trace(root, "1"),
                received=_date(root, "050"),
                processed=_date(root, "009"),
                receivers=tuple(receivers),
            )
        )
    created = date8(bht, 4)
    assert created is not None
    return ClaimAcknowledgment(reference=bht[3], created=created, time=bht[5], sources=tuple(sources))


def check(transaction: Transaction) -> Iterator[Finding]:
    """X214 rules our typed reader does not enforce: required statuses, action codes, claim totals."""
    acknowledgment = read(transaction)
    for source in acknowledgment.sources:
        for receiver in source.receivers:
            if not receiver.statuses:
                yield Finding("STC", None, None, "the information receiver level has no STC")
            for provider in receiver.providers:
                if not provider.statuses:
                    yield Finding("STC", None, None, "the billing provider level has no STC")
                for patient in provider.patients:
                    for claim in patient.claims:
                        if not claim.statuses:
                            yield Finding("STC", None, None, "a claim status loop has no STC")
                        for found in claim.statuses:
                            if found.action not in (ACCEPT, REJECT):
                                yield Finding("STC", None, 3, "action code is neither WQ nor U")
                            if found.charge is None:
                                yield Finding("STC", None, 4, "the claim status has no total charge")
                        if claim.service_start is None:
                            yield Finding("DTP", None, None, "a claim status loop has no service date")


# -- writing
def _write_totals(body: TransactionWriter, totals: Totals, accepted: str, rejected: str) -> None:
    if totals.accepted_count is not None:
        body.segment("QTY", accepted, totals.accepted_count)
    if totals.rejected_count is not None:
        body.segment("QTY", rejected, totals.rejected_count)
    if totals.accepted_amount is not None:
        body.segment("AMT", "YU", amount(totals.accepted_amount))
    if totals.rejected_amount is not None:
        body.segment("AMT", "YY", amount(totals.rejected_amount))


def write_claim_acknowledgment(body: TransactionWriter, acknowledgment: ClaimAcknowledgment) -> None:
    """The body of one 277CA transaction set (BHT ... the last claim) into ``body``."""
    body.segment(
        "BHT", "0085", "08", acknowledgment.reference, d8(acknowledgment.created), acknowledgment.time, "TH"
    )
    levels = Hierarchy(body)
    for source in acknowledgment.sources:
        top = levels.level(None, "20", True)
        write_person(body, source.source_qualifier, source.source)
        body.segment("TRN", "1", source.trace)
        body.segment("DTP", "050", "D8", d8(source.received))
        body.segment("DTP", "009", "D8", d8(source.processed))
        for receiver in source.receivers:
            receiver_level = levels.level(top, "21", bool(receiver.providers))
            write_person(body, "41", receiver.receiver)
            body.segment("TRN", "2", receiver.trace)
            for found in receiver.statuses:
                write_status(body, found)
            _write_totals(body, receiver.totals, "90", "AA")
            for provider in receiver.providers:
                provider_level = levels.level(receiver_level, "19", bool(provider.patients))
                write_person(body, "85", provider.provider)
                body.segment("TRN", "1", provider.trace)
                for found in provider.statuses:
                    write_status(body, found)
                if provider.reference is not None:
                    body.segment("REF", provider.reference.qualifier, provider.reference.value)
                _write_totals(body, provider.totals, "QA", "QC")
                for patient in provider.patients:
                    levels.level(provider_level, "PT", None)
                    write_person(body, "QC", patient.patient)
                    for claim in patient.claims:
                        write_claim(body, claim)


def claim_acknowledgment_interchange(
    acknowledgments: Iterable[ClaimAcknowledgment],
    *,
    sender: Party,
    receiver: Party,
    control_number: int,
    when: datetime,
    usage: str = "P",
) -> str:
    """An interchange of one HN functional group holding one 277CA per acknowledgment."""
    return single_group_interchange(
        acknowledgments,
        write_claim_acknowledgment,
        functional_id="HN",
        transaction_set="277",
        implementation=IMPLEMENTATION,
        sender=sender,
        receiver=receiver,
        control_number=control_number,
        when=when,
        usage=usage,
    )
