"""The 277 claim status response (005010X212): the payer's answer to a 276 inquiry, per claim and per line.

The hierarchy: information source (HL 20, the payer), information receiver (HL 21), service provider
(HL 19), subscriber (HL 22) and, when the patient is not the subscriber, dependent (HL 23); the claim status
loops (TRN*2 with the inquiry's trace, STC with category and status codes, amounts, adjudication and check
dates, REF*1K payer claim control number, DTP service dates, SVC lines) hang under the subscriber or the
dependent. pyx12 has no X212 map: ``check`` holds the guide rules we rely on, and the tests round-trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime

import msgspec

from rcm.x12.document import Finding
from rcm.x12.envelope import Transaction
from rcm.x12.errors import X12Error
from rcm.x12.remittance_model import Person
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
from rcm.x12.values import date8
from rcm.x12.writer import Party, TransactionWriter, single_group_interchange

IMPLEMENTATION = "005010X212"


class Dependent(msgspec.Struct, frozen=True, kw_only=True):
    """HL 23: the patient, when not the subscriber (NM1*QC), and their claims."""

    patient: Person
    claims: tuple[ClaimStatus, ...] = ()


class Subscriber(msgspec.Struct, frozen=True, kw_only=True):
    """HL 22: the subscriber (NM1*IL), their own claims, their dependents."""

    subscriber: Person
    claims: tuple[ClaimStatus, ...] = ()
    dependents: tuple[Dependent, ...] = ()


class StatusProvider(msgspec.Struct, frozen=True, kw_only=True):
    """HL 19: the service provider (NM1*1P), an optional provider-level trace and status."""

    provider: Person
    trace: str | None = None
    statuses: tuple[Status, ...] = ()
    subscribers: tuple[Subscriber, ...] = ()


class StatusReceiver(msgspec.Struct, frozen=True, kw_only=True):
    """HL 21: the information receiver (NM1*41), an optional receiver-level trace and status."""

    receiver: Person
    trace: str | None = None
    statuses: tuple[Status, ...] = ()
    providers: tuple[StatusProvider, ...] = ()


class StatusSource(msgspec.Struct, frozen=True, kw_only=True):
    """HL 20: the payer (NM1*PR)."""

    payer: Person
    receivers: tuple[StatusReceiver, ...] = ()


class ClaimStatusResponse(msgspec.Struct, frozen=True, kw_only=True):
    """One 277 transaction set."""

    reference: str  # BHT03
    created: date  # BHT04
    time: str  # BHT05
    sources: tuple[StatusSource, ...]

    def all_claims(self) -> Iterator[ClaimStatus]:
        for source in self.sources:
            for receiver in source.receivers:
                for provider in receiver.providers:
                    for subscriber in provider.subscribers:
                        yield from subscriber.claims
                        for dependent in subscriber.dependents:
                            yield from dependent.claims


# -- reading
def _trace(level: Level, kind: str) -> str | None:
    trn = first(level, "TRN", kind)
    return None if trn is None else (trn[2] or None)


def read(transaction: Transaction) -> ClaimStatusResponse:
    component = transaction.delimiters.component
    bht, roots = hierarchy(transaction, "0010")
    sources = []
    for root in roots:
        if root.code != "20":
            raise X12Error(
                "the top level is not an information source (HL 20)", segment_id="HL", position=root.hl.index
            )
        receivers = []
        for receiver in children(root, "21"):
            providers = []
            for provider in children(receiver, "19"):
                subscribers = []
                for subscriber in children(provider, "22"):
                    dependents = tuple(
                        Dependent(
                            patient=person(dependent, "QC"), claims=claims(dependent.segments, component)
                        )
                        for dependent in children(subscriber, "23")
                    )
                    subscribers.append(
                        Subscriber(
                            subscriber=person(subscriber, "IL"),
                            claims=claims(subscriber.segments, component),
                            dependents=dependents,
                        )
                    )
                providers.append(
                    StatusProvider(
                        provider=person(provider, "1P"),
                        trace=_trace(provider, "1"),
                        statuses=statuses(provider, component),
                        subscribers=tuple(subscribers),
                    )
                )
            receivers.append(
                StatusReceiver(
                    receiver=person(receiver, "41"),
                    trace=_trace(receiver, "2"),
                    statuses=statuses(receiver, component),
                    providers=tuple(providers),
                )
            )
        sources.append(StatusSource(payer=person(root, "PR"), receivers=tuple(receivers)))
    created = date8(bht, 4)
    assert created is not None
    return ClaimStatusResponse(reference=bht[3], created=created, time=bht[5], sources=tuple(sources))


def check(transaction: Transaction) -> Iterator[Finding]:
    """X212 rules the typed reader does not enforce: every claim has a status with its date, lines too."""
    response = read(transaction)
    for claim in response.all_claims():
        if not claim.statuses:
            yield Finding("STC", None, None, "a claim status loop has no STC")
        for found in claim.statuses:
            if found.effective is None:
                yield Finding("STC", None, 2, "the claim status has no status date")
        for line in claim.lines:
            if not line.statuses:
                yield Finding("STC", None, None, "a service line has no STC")
            if line.service_start is None:
                yield Finding("DTP", None, None, "a service line has no service date")
            if line.units is None:
                yield Finding("SVC", None, 7, "a service line has no units")


# -- writing
def _write_claims(body: TransactionWriter, found: Iterable[ClaimStatus]) -> None:
    for claim in found:
        write_claim(body, claim)


def write_claim_status(body: TransactionWriter, response: ClaimStatusResponse) -> None:
    """The body of one 277 transaction set into ``body``."""
    body.segment("BHT", "0010", "08", response.reference, d8(response.created), response.time, "DG")
    levels = Hierarchy(body)
    for source in response.sources:
        top = levels.level(None, "20", True)
        write_person(body, "PR", source.payer)
        for receiver in source.receivers:
            receiver_level = levels.level(top, "21", bool(receiver.providers))
            write_person(body, "41", receiver.receiver)
            if receiver.trace:
                body.segment("TRN", "2", receiver.trace)
                for found in receiver.statuses:
                    write_status(body, found)
            for provider in receiver.providers:
                provider_level = levels.level(receiver_level, "19", bool(provider.subscribers))
                write_person(body, "1P", provider.provider)
                if provider.trace:
                    body.segment("TRN", "1", provider.trace)
                    for found in provider.statuses:
                        write_status(body, found)
                for subscriber in provider.subscribers:
                    subscriber_level = levels.level(provider_level, "22", bool(subscriber.dependents))
                    write_person(body, "IL", subscriber.subscriber)
                    _write_claims(body, subscriber.claims)
                    for dependent in subscriber.dependents:
                        levels.level(subscriber_level, "23", None)
                        write_person(body, "QC", dependent.patient)
                        _write_claims(body, dependent.claims)


def claim_status_interchange(
    responses: Iterable[ClaimStatusResponse],
    *,
    sender: Party,
    receiver: Party,
    control_number: int,
    when: datetime,
    usage: str = "P",
) -> str:
    """An interchange of one HN functional group holding one 277 per response."""
    return single_group_interchange(
        responses,
        write_claim_status,
        functional_id="HN",
        transaction_set="277",
        implementation=IMPLEMENTATION,
        sender=sender,
        receiver=receiver,
        control_number=control_number,
        when=when,
        usage=usage,
    )
