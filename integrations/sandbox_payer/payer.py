"""What the sandbox payer answers, built from our X12 readers' models and written by our writers.

``adjudicate`` turns one received 837 interchange into its 999, one 277CA per accepted transaction set and
the 835s of the accepted claims; ``eligibility`` answers a 270 with a 271 and ``status`` a 276 with a 277.
Nothing here touches the disk: the connector (``sandbox_payer.connector``) keeps the state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from rcm.x12 import Party, X12Error, transactions
from rcm.x12.acknowledgment import (
    ElementError,
    GroupResponse,
    SegmentError,
    SetResponse,
    acknowledge,
    acknowledgment_interchange,
    group_response,
    set_response,
)
from rcm.x12.benefits import Answer, Benefit, EligibilityResponse, PlanDate, Rejection, write_271
from rcm.x12.claim_ack import (
    ClaimAcknowledgment,
    PatientAck,
    ProviderAck,
    ReceiverAck,
    SourceAck,
    Totals,
    claim_acknowledgment_interchange,
)
from rcm.x12.claim_status import (
    ClaimStatusResponse,
    Dependent,
    StatusProvider,
    StatusReceiver,
    StatusSource,
    Subscriber,
    claim_status_interchange,
)
from rcm.x12.claim_status_request import ClaimQuery, ClaimStatusRequest, read_276_request
from rcm.x12.claims import BillingProvider, Claim, ServiceLine, SubscriberLoop
from rcm.x12.claims837_read import ClaimTransaction
from rcm.x12.claims837_read import read as read_837
from rcm.x12.eligibility import EligibilityRequest, Member, read_270_request
from rcm.x12.envelope import GroupHeader
from rcm.x12.model import Envelope, envelope_of
from rcm.x12.remittance_model import (
    FILING_INDICATORS,
    Account,
    Address,
    Adjustment,
    Contact,
    Funds,
    Header,
    Payee,
    Payer,
    Person,
    Reference,
    Remittance,
)
from rcm.x12.remittance_model import Claim as PaidClaim
from rcm.x12.remittance_model import ServiceLine as PaidLine
from rcm.x12.remittance_writer import remittance_interchange
from rcm.x12.statuses import ClaimStatus, Status, StatusCode
from sandbox_payer.rules import Eligibility, Outcome, Rule, Rules
from sandbox_payer.store import ClaimRecord

# The sandbox payer's own identity on the 835: a fixed TIN and bank, so every file is complete and valid.
PAYER_TIN = "999999999"
_PAYER_BANK = Account(dfi_qualifier="01", dfi="999999992", account_qualifier="DA", account="100200300")
_PROVIDER_BANK = Account(dfi_qualifier="01", dfi="999988880", account_qualifier="DA", account="400500600")
_PAYER_ADDRESS = Address(line1="1 SANDBOX WAY", city="LANSING", state="MI", postal_code="48909")
_PROFESSIONAL, _INSTITUTIONAL = "837P", "837I"

# Allocates the next interchange control number (the connector's counter, under its lock).
NextControl = Callable[[], int]


def payer_claim_control_number(provider_npi: str, patient_control_number: str) -> str:
    """CLP07 / REF*1K: the same for the same claim (billing provider and CLM01) whenever and wherever it is
    adjudicated, different for different claims: a hash, so it needs no shared counter."""
    digest = hashlib.sha256(f"{provider_npi}|{patient_control_number}".encode()).hexdigest()
    return f"SBX{int(digest[:16], 16) % 10**13:013d}"


@dataclass
class Produced:
    """The files one submission yields in order: (kind, interchange control number, x12, the fetch from which
    it is out), and the claims' new records."""

    files: list[tuple[str, int, str, int]] = field(default_factory=list)
    records: dict[str, ClaimRecord] = field(default_factory=dict)


@dataclass
class _Decided:
    loop: SubscriberLoop
    claim: Claim
    rule: Rule


@dataclass
class _Set:
    group: GroupHeader
    control_number: str
    implementation: str
    kind: str
    clm_positions: dict[str, int]
    read: ClaimTransaction | None = None
    refused: X12Error | None = None


def _reply_parties(envelope: Envelope) -> tuple[Party, Party]:
    """The answer goes back the way the question came: the receiver of the question sends it."""
    return Party(envelope.receiver_qualifier, envelope.receiver_id), Party(
        envelope.sender_qualifier, envelope.sender_id
    )


_VERSIONS = {"HC": "005010X222A1", "HS": "005010X279A1", "HR": "005010X212"}


def _refusal(functional_id: str, control_number: str) -> GroupResponse:
    """A 999 refusing a file whose functional group could not be read at all (AK905 3: group trailer
    missing, the closest code for an envelope that does not hold together). AK102 carries the interchange
    control number, the only one such a file is known by."""
    return GroupResponse(
        functional_id=functional_id,
        control_number=str(int(control_number)) if control_number.isdigit() else "1",
        version=_VERSIONS[functional_id],
        status="R",
        included=0,
        received=0,
        accepted=0,
        codes=("3",),
    )


def _isa13(x12: bytes) -> str:
    """ISA13 of a file whose envelope may be broken: the fixed-width ISA, read by its own delimiter."""
    if len(x12) < 106 or not x12.startswith(b"ISA"):
        return "1"
    fields = x12[:106].split(x12[3:4])
    return fields[13].decode("ascii", "replace") if len(fields) > 13 else "1"


def _sets(x12: bytes) -> list[_Set]:
    """Every transaction set of the file with the positions of its CLM segments (IK302 counts from ST)."""
    found: list[_Set] = []
    for transaction in transactions(x12):
        header = transaction.header
        positions: dict[str, int] = {}
        for segment in transaction:
            if segment.id == "CLM":
                positions.setdefault(segment[1], segment.index - transaction.st.index + 1)
        found.append(
            _Set(transaction.group, header.control_number, header.implementation, transaction.kind, positions)
        )
    return found


def _read_claims(x12: bytes, sets: list[_Set]) -> None:
    for transaction, found in zip(transactions(x12), sets, strict=True):
        if transaction.kind not in (_PROFESSIONAL, _INSTITUTIONAL):
            transaction.drain()
            continue
        try:
            found.read = read_837(transaction)
        except X12Error as exc:
            found.refused = exc
            transaction.drain()


def adjudicate(
    x12: bytes,
    *,
    control_number: str,
    rules: Rules,
    fetches: int,
    next_control: NextControl,
    now: datetime,
    fallback: Envelope,
) -> Produced:
    """The answers to one 837 interchange (``control_number``: its ISA13, for a file that cannot be read)."""
    produced = Produced()
    try:
        responses = acknowledge(x12)
        sets = _sets(x12)
        _read_claims(x12, sets)
        envelope = envelope_of(next(transactions(x12)))
    except (X12Error, StopIteration, RuntimeError):
        # The front end cannot read the interchange: one 999 refusing it, nothing else.
        sender, receiver = _reply_parties(fallback)
        control = next_control()
        content = acknowledgment_interchange(
            [_refusal("HC", control_number)],
            sender=sender,
            receiver=receiver,
            control_number=control,
            when=now,
            usage=fallback.usage,
        )
        produced.files.append(("999", control, content, fetches))
        return produced

    acknowledgments, accepted_sets = _front_end(responses, sets, rules, produced, fetches)
    sender, receiver = _reply_parties(envelope)
    control = next_control()
    content = acknowledgment_interchange(
        acknowledgments,
        sender=sender,
        receiver=receiver,
        control_number=control,
        when=now,
        usage=envelope.usage,
    )
    produced.files.append(("999", control, content, fetches))
    if not accepted_sets:
        return produced
    control = next_control()
    content = claim_acknowledgment_interchange(
        [_claim_acknowledgment(found, decided, now) for found, decided in accepted_sets],
        sender=sender,
        receiver=receiver,
        control_number=control,
        when=now,
        usage=envelope.usage,
    )
    produced.files.append(("277CA", control, content, fetches))
    _remit(accepted_sets, produced, fetches=fetches, next_control=next_control, now=now, envelope=envelope)
    return produced


def _front_end(
    responses: list[GroupResponse], sets: list[_Set], rules: Rules, produced: Produced, fetches: int
) -> tuple[list[GroupResponse], list[tuple[_Set, list[_Decided]]]]:
    """The 999 verdicts (the guide check, then the rules' rejections) and the sets going on to a 277CA."""
    given = {(r.control_number, s.control_number): s for r in responses for s in r.sets}
    groups: dict[str, tuple[GroupHeader, list[SetResponse]]] = {}
    accepted_sets: list[tuple[_Set, list[_Decided]]] = []
    for found in sets:
        response = given[(found.group.control_number, found.control_number)]
        decided: list[_Decided] = []
        if found.read is not None and response.accepted:
            decided = [
                _Decided(loop, claim, rules.decide(loop, claim))
                for provider in found.read.billing_providers
                for loop in provider.subscribers
                for claim in loop.claims
            ]
            rejected = [d for d in decided if d.rule.outcome is Outcome.REJECT_999]
            if rejected:
                # IK3 on each CLM the rules refused, IK4 on CLM02 (the amount): the whole set is rejected.
                errors = [
                    SegmentError(
                        segment_id="CLM",
                        position=found.clm_positions.get(d.claim.patient_control_number, 1),
                        loop="2300",
                        code="8",
                        elements=(ElementError(position=2, reference="782", code="7"),),
                    )
                    for d in rejected
                ]
                response = set_response(found.kind[:3], found.control_number, found.implementation, errors)
                for d in decided:
                    produced.records[_key(found, d)] = _record(found, d, "rejected_999", fetches)
                decided = []
        elif found.refused is not None and response.accepted:
            # Our reader refused what the guide check let through: the set is rejected all the same.
            response = set_response(found.kind[:3], found.control_number, found.implementation, unlocated=1)
        groups.setdefault(found.group.control_number, (found.group, []))[1].append(response)
        if decided:
            accepted_sets.append((found, decided))
    return [group_response(group, answered) for group, answered in groups.values()], accepted_sets


def _remit(
    accepted_sets: list[tuple[_Set, list[_Decided]]],
    produced: Produced,
    *,
    fetches: int,
    next_control: NextControl,
    now: datetime,
    envelope: Envelope,
) -> None:
    """The 835s of the claims the 277CA accepted: one file per delay, one 835 (one payment) per billing
    provider in it. A delayed file is out from the fetch ``delay`` fetches after the first one to come."""
    by_delay: dict[int, dict[str, list[_Decided]]] = {}
    providers: dict[str, BillingProvider] = {}
    for found, decided in accepted_sets:
        assert found.read is not None
        for provider in found.read.billing_providers:
            providers[provider.npi] = provider
        for d in decided:
            if d.rule.outcome is Outcome.REJECT_277CA:
                produced.records[_key(found, d)] = _record(found, d, "rejected_277ca", fetches)
                continue
            by_delay.setdefault(d.rule.delay_fetches, {}).setdefault(_provider_of(found, d).npi, []).append(d)
    sender, receiver = _reply_parties(envelope)
    for delay, per_provider in sorted(by_delay.items()):
        due = fetches + 1 + delay if delay else fetches
        control = next_control()
        remittances = []
        for number, (npi, decided) in enumerate(per_provider.items(), start=1):
            trace = f"SBX{control:09d}{number:03d}"
            paid_claims = tuple(_paid_claim(npi, d) for d in decided)
            remittances.append(_remittance(providers[npi], paid_claims, trace, now.date()))
            for d, paid in zip(decided, paid_claims, strict=True):
                start, end = _dates(d.claim)
                produced.records[paid.payer_claim_control_number] = ClaimRecord(
                    payer_claim_control_number=paid.payer_claim_control_number,
                    patient_control_number=d.claim.patient_control_number,
                    provider_npi=npi,
                    outcome=_OUTCOMES[d.rule.outcome],
                    charge=d.claim.total_charge,
                    paid=paid.paid,
                    due=due,
                    service_start=_iso(start),
                    service_end=_iso(end),
                    adjudicated=now.date().isoformat(),
                    check_number=trace,
                )
        content = remittance_interchange(
            remittances,
            sender=sender,
            receiver=receiver,
            control_number=control,
            when=now,
            usage=envelope.usage,
        )
        produced.files.append(("835", control, content, due))


_OUTCOMES = {Outcome.PAY: "paid", Outcome.PARTIAL: "partial", Outcome.DENY: "denied"}


def _provider_of(found: _Set, decided: _Decided) -> BillingProvider:
    assert found.read is not None
    return next(p for p in found.read.billing_providers if decided.loop in p.subscribers)


def _key(found: _Set, decided: _Decided) -> str:
    return payer_claim_control_number(_provider_of(found, decided).npi, decided.claim.patient_control_number)


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _record(found: _Set, decided: _Decided, outcome: str, fetches: int) -> ClaimRecord:
    start, end = _dates(decided.claim)
    return ClaimRecord(
        payer_claim_control_number=_key(found, decided),
        patient_control_number=decided.claim.patient_control_number,
        provider_npi=_provider_of(found, decided).npi,
        outcome=outcome,
        charge=decided.claim.total_charge,
        due=fetches,
        service_start=_iso(start),
        service_end=_iso(end),
    )


def _dates(claim: Claim) -> tuple[date | None, date | None]:
    if claim.institutional is not None:
        return claim.institutional.statement_start, claim.institutional.statement_end
    starts = [line.service_date for line in claim.lines if line.service_date]
    ends = [line.service_date_end or line.service_date for line in claim.lines if line.service_date]
    return (min(starts) if starts else None), (max(e for e in ends if e) if ends else None)


def _organization(name: str, qualifier: str, identifier: str) -> Person:
    """An NM1 of an organisation (entity type 2): the payer, the submitter, a billing provider."""
    return Person(entity_type="2", last=name, identifier_qualifier=qualifier, identifier=identifier)


def _patient(loop: SubscriberLoop) -> Person:
    name = loop.patient.name if loop.patient is not None else loop.subscriber.name
    return Person(
        last=name.last,
        first=name.first,
        middle=name.middle,
        suffix=name.suffix,
        identifier_qualifier="MI",
        identifier=loop.subscriber.member_id,
    )


# -- 277CA
def _claim_acknowledgment(found: _Set, decided: list[_Decided], now: datetime) -> ClaimAcknowledgment:
    assert found.read is not None
    today = now.date()

    def status(d: _Decided) -> Status:
        if d.rule.outcome is Outcome.REJECT_277CA:
            return Status(
                codes=(StatusCode(category="A7", code=d.rule.status_code),),
                effective=today,
                action="U",
                charge=d.claim.total_charge,
                message=d.rule.message,
            )
        return Status(
            codes=(StatusCode(category="A2", code="20"),),
            effective=today,
            action="WQ",
            charge=d.claim.total_charge,
        )

    def totals(claims: Iterable[_Decided]) -> Totals:
        listed = list(claims)
        accepted = [d for d in listed if d.rule.outcome is not Outcome.REJECT_277CA]
        rejected = [d for d in listed if d.rule.outcome is Outcome.REJECT_277CA]
        return Totals(
            accepted_count=len(accepted),
            rejected_count=len(rejected),
            accepted_amount=sum(d.claim.total_charge for d in accepted),
            rejected_amount=sum(d.claim.total_charge for d in rejected),
        )

    def batch_status(claims: list[_Decided], *, dated: bool = True) -> Status:
        # X214 marks STC02 not used at the billing provider level: only the receiver's status is dated.
        return Status(
            codes=(StatusCode(category="A1", code="19"),),
            effective=today if dated else None,
            action="WQ",
            charge=sum(d.claim.total_charge for d in claims),
        )

    provider_acks = []
    for number, provider in enumerate(found.read.billing_providers, start=1):
        mine = [d for d in decided if d.loop in provider.subscribers]
        if not mine:
            continue
        patients = []
        for d in mine:
            start, end = _dates(d.claim)
            accepted = d.rule.outcome is not Outcome.REJECT_277CA
            claim_status = ClaimStatus(
                tracking_number=d.claim.patient_control_number,
                statuses=(status(d),),
                payer_claim_control_number=(
                    payer_claim_control_number(provider.npi, d.claim.patient_control_number)
                    if accepted
                    else None
                ),
                service_start=start,
                service_end=end,
            )
            patients.append(PatientAck(patient=_patient(d.loop), claims=(claim_status,)))
        provider_acks.append(
            ProviderAck(
                provider=_organization(provider.name, "XX", provider.npi),
                trace=str(number),
                statuses=(batch_status(mine, dated=False),),
                reference=Reference("TJ", provider.tin),
                totals=totals(mine),
                patients=tuple(patients),
            )
        )
    read = found.read
    receiver = ReceiverAck(
        receiver=_organization(read.submitter.name, "46", read.submitter.identifier),
        trace=read.reference,
        statuses=(batch_status(decided),),
        totals=totals(decided),
        providers=tuple(provider_acks),
    )
    source = SourceAck(
        source=_organization(read.receiver.name, "PI", read.receiver.identifier),
        trace=f"SBX{found.control_number}",
        received=today,
        processed=today,
        receivers=(receiver,),
    )
    return ClaimAcknowledgment(
        reference=f"SBX{found.group.control_number}{found.control_number}"[:30],
        created=today,
        time=now.strftime("%H%M"),
        sources=(source,),
    )


# -- 835
def _filing_indicator(sbr09: str) -> str:
    """CLP06 has fewer codes than SBR09: commercial (CI) and the others the 835 lacks are sent as PPO (12)."""
    return sbr09 if sbr09 in FILING_INDICATORS else "12"


def _paid_line(line: ServiceLine, rule: Rule) -> PaidLine:
    charge = line.charge
    adjustments: list[Adjustment] = []
    remarks: tuple[str, ...] = ()
    if rule.outcome is Outcome.DENY:
        adjustments.append(Adjustment(group=rule.group, reason=rule.carc, amount=charge))
        paid = 0
        allowed = None
        remarks = (rule.rarc,) if rule.rarc else ()
    elif rule.outcome is Outcome.PARTIAL:
        contractual = charge * rule.contractual_percent // 100
        allowed = charge - contractual
        patient = allowed * rule.patient_percent // 100
        paid = allowed - patient
        if contractual:
            adjustments.append(Adjustment(group="CO", reason="45", amount=contractual))
        if patient:
            adjustments.append(Adjustment(group="PR", reason=rule.patient_reason, amount=patient))
        remarks = (rule.rarc,) if rule.rarc and patient else ()
    else:
        paid = allowed = charge
    if line.procedure:
        qualifier, code, revenue = "HC", line.procedure, line.revenue_code
    else:
        qualifier, code, revenue = "NU", line.revenue_code or "", None
    return PaidLine(
        qualifier=qualifier,
        code=code,
        modifiers=line.modifiers if line.procedure else (),
        charge=charge,
        paid=paid,
        revenue_code=revenue,
        units=line.units,
        service_start=line.service_date,
        service_end=line.service_date_end or line.service_date,
        adjustments=tuple(adjustments),
        control_number=line.control_number,
        allowed=allowed,
        remarks=remarks,
    )


def _paid_claim(npi: str, decided: _Decided) -> PaidClaim:
    claim, rule = decided.claim, decided.rule
    lines = tuple(_paid_line(line, rule) for line in claim.lines)
    patient_share = sum(a.amount for line in lines for a in line.adjustments if a.group == "PR")
    start, end = _dates(claim)
    institutional = claim.institutional is not None
    return PaidClaim(
        patient_control_number=claim.patient_control_number,
        status="4" if rule.outcome is Outcome.DENY else "1",
        charge=sum(line.charge for line in lines),
        paid=sum(line.paid for line in lines),
        filing_indicator=_filing_indicator(decided.loop.subscriber.claim_filing_indicator),
        payer_claim_control_number=payer_claim_control_number(npi, claim.patient_control_number),
        patient=_patient(decided.loop),
        patient_responsibility=patient_share or None,
        facility_type=claim.place_of_service,
        frequency=claim.frequency,
        service_start=start if institutional else None,
        service_end=end if institutional else None,
        lines=lines,
    )


def _remittance(
    provider: BillingProvider, claims: tuple[PaidClaim, ...], trace: str, today: date
) -> Remittance:
    total = sum(claim.paid for claim in claims)
    funds = Funds(format="CCP", sender=_PAYER_BANK, originator_id=f"1{PAYER_TIN}", receiver=_PROVIDER_BANK)
    address = provider.address
    header = Header(
        handling="I" if total else "H",
        total_paid=total,
        credit_debit="C",
        payment_method="ACH" if total else "NON",
        funds=funds if total else None,
        payment_date=today,
        trace_number=trace,
        trace_originator=f"1{PAYER_TIN}",
        production_date=today,
        payer=Payer(
            name="SANDBOX HEALTH PLAN",
            payer_id="SANDBOX",
            address=_PAYER_ADDRESS,
            technical_contact=Contact(function="BL", name="SANDBOX EDI", phone="8005550100"),
        ),
        payee=Payee(
            name=provider.name,
            npi=provider.npi,
            tin=provider.tin,
            address=Address(
                line1=address.line1,
                line2=address.line2,
                city=address.city,
                state=address.state,
                postal_code=address.postal_code,
            ),
        ),
    )
    return Remittance(header=header, claims=claims)


# -- 270 -> 271
def eligibility(request: EligibilityRequest, rules: Eligibility, *, control: int, now: datetime) -> str:
    envelope = _reply_envelope(request.envelope, control, now)
    answers = []
    year_start = date(now.year, 1, 1)
    for inquiry in request.inquiries:
        rejections: tuple[Rejection, ...] = ()
        benefits: tuple[Benefit, ...] = ()
        dates: tuple[PlanDate, ...] = ()
        if rules.unknown(inquiry.subscriber.member_id):
            # AAA 75 subscriber/insured not found, C: correct and resubmit.
            rejections = (Rejection(reason="75", follow_up="C"),)
        elif not rules.active(inquiry.subscriber.member_id):
            benefits = (Benefit(code="6", coverage_level="IND", service_types=("30",)),)
        else:
            listed = [Benefit(code="1", coverage_level="IND", service_types=("30",), plan=rules.plan)]
            for service_type in inquiry.service_types:
                listed.append(
                    Benefit(
                        code="B",
                        service_types=(service_type,),
                        time_period="27",
                        amount=rules.copay.get(service_type, rules.default_copay),
                        in_network="Y",
                    )
                )
                listed.append(
                    Benefit(
                        code="A", service_types=(service_type,), percent=rules.coinsurance, in_network="Y"
                    )
                )
            listed.append(
                Benefit(
                    code="C",
                    coverage_level="IND",
                    service_types=("30",),
                    time_period="23",
                    amount=rules.deductible,
                    in_network="Y",
                )
            )
            benefits = tuple(listed)
            dates = (PlanDate(qualifier="346", start=year_start, end=year_start),)
        answers.append(
            Answer(
                trace_number=inquiry.trace_number,
                subscriber=inquiry.subscriber,
                dependent=inquiry.dependent,
                dates=dates,
                benefits=benefits,
                rejections=rejections,
            )
        )
    return write_271(
        EligibilityResponse(
            envelope=envelope,
            reference=request.reference,
            trace_originator=request.trace_originator,
            source=request.source,
            receiver=request.receiver,
            answers=tuple(answers),
        )
    )


def _reply_envelope(asked: Envelope, control: int, now: datetime) -> Envelope:
    return Envelope(
        sender_qualifier=asked.receiver_qualifier,
        sender_id=asked.receiver_id,
        receiver_qualifier=asked.sender_qualifier,
        receiver_id=asked.sender_id,
        interchange_control_number=control,
        group_control_number=control,
        created=now,
        usage=asked.usage,
    )


# -- 276 -> 277
def _member(member: Member, qualifier: bool) -> Person:
    return Person(
        last=member.name.last,
        first=member.name.first,
        middle=member.name.middle,
        suffix=member.name.suffix,
        identifier_qualifier="MI" if qualifier and member.member_id else None,
        identifier=member.member_id if qualifier else None,
    )


def _claim_status(
    query: ClaimQuery, records: dict[str, ClaimRecord], fetches: int, today: date
) -> ClaimStatus:
    record = None
    if query.payer_claim_control_number:
        record = records.get(query.payer_claim_control_number)
    if record is None and query.patient_control_number:
        record = next(
            (r for r in records.values() if r.patient_control_number == query.patient_control_number), None
        )
    if record is None or record.outcome == "rejected_999":
        # Never entered adjudication: not found (A4:35).
        return ClaimStatus(
            tracking_number=query.trace_number,
            statuses=(
                Status(
                    codes=(StatusCode(category="A4", code="35"),), effective=today, charge=query.total_charge
                ),
            ),
            references=(Reference("EJ", query.patient_control_number),)
            if query.patient_control_number
            else (),
        )
    finalized = record.due <= fetches and record.outcome in ("paid", "partial", "denied")
    if record.outcome == "rejected_277ca":
        found = Status(codes=(StatusCode(category="A7", code="21"),), effective=today, charge=record.charge)
    elif not finalized:
        found = Status(codes=(StatusCode(category="P1", code="20"),), effective=today, charge=record.charge)
    else:
        adjudicated = date.fromisoformat(record.adjudicated) if record.adjudicated else today
        found = Status(
            codes=(
                StatusCode(
                    category="F2" if record.outcome == "denied" else "F1",
                    code="1" if record.outcome == "denied" else "65",
                ),
            ),
            effective=today,
            charge=record.charge,
            paid=record.paid,
            adjudicated=adjudicated,
            check_date=adjudicated,
            check_number=record.check_number,
        )
    return ClaimStatus(
        tracking_number=query.trace_number,
        statuses=(found,),
        payer_claim_control_number=record.payer_claim_control_number,
        references=(Reference("EJ", record.patient_control_number),),
        service_start=date.fromisoformat(record.service_start) if record.service_start else None,
        service_end=date.fromisoformat(record.service_end) if record.service_end else None,
    )


def status(
    request: ClaimStatusRequest, records: dict[str, ClaimRecord], *, fetches: int, control: int, now: datetime
) -> str:
    today = now.date()
    subscribers = []
    for inquiry in request.inquiries:
        claims = tuple(_claim_status(q, records, fetches, today) for q in inquiry.claims)
        if inquiry.dependent is not None:
            subscribers.append(
                Subscriber(
                    subscriber=_member(inquiry.subscriber, True),
                    dependents=(Dependent(patient=_member(inquiry.dependent, False), claims=claims),),
                )
            )
        else:
            subscribers.append(Subscriber(subscriber=_member(inquiry.subscriber, True), claims=claims))
    provider = request.provider
    response = ClaimStatusResponse(
        reference=request.reference,
        created=today,
        time=now.strftime("%H%M"),
        sources=(
            StatusSource(
                payer=_organization(request.source.name, "PI", request.source.payer_id),
                receivers=(
                    StatusReceiver(
                        receiver=_organization(request.requester.name, "46", request.requester.identifier),
                        providers=(
                            StatusProvider(
                                provider=Person(
                                    entity_type="2" if provider.organization else "1",
                                    last=provider.last,
                                    first=provider.first,
                                    identifier_qualifier="XX",
                                    identifier=provider.npi,
                                ),
                                subscribers=tuple(subscribers),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )
    sender, receiver = _reply_parties(request.envelope)
    return claim_status_interchange(
        [response],
        sender=sender,
        receiver=receiver,
        control_number=control,
        when=now,
        usage=request.envelope.usage,
    )


def read_inquiry_270(x12: bytes) -> list[EligibilityRequest]:
    return [read_270_request(t, envelope_of(t)) for t in transactions(x12)]


def read_inquiry_276(x12: bytes) -> list[ClaimStatusRequest]:
    return [read_276_request(t, envelope_of(t)) for t in transactions(x12)]


def refusal_999(x12: bytes, *, functional_id: str, control: int, now: datetime, fallback: Envelope) -> str:
    """The 999 for an inquiry our reader refused: each set rejected (its guide errors when the check found
    them), or the whole interchange when even the envelope does not read."""
    try:
        groups = acknowledge(x12)
        envelope = envelope_of(next(transactions(x12)))
        groups = [
            GroupResponse(
                functional_id=g.functional_id,
                control_number=g.control_number,
                version=g.version,
                status="R",
                included=g.included,
                received=g.received,
                accepted=0,
                sets=tuple(
                    s
                    if not s.accepted
                    else set_response(s.transaction_set, s.control_number, s.implementation, unlocated=1)
                    for s in g.sets
                ),
            )
            for g in groups
        ]
    except (X12Error, StopIteration, RuntimeError):
        envelope, groups = fallback, [_refusal(functional_id, _isa13(x12))]
    sender, receiver = _reply_parties(envelope)
    return acknowledgment_interchange(
        groups, sender=sender, receiver=receiver, control_number=control, when=now, usage=envelope.usage
    )
