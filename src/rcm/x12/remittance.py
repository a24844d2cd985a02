"""Reading an 835 (005010X221A1) into typed results, streamed: the header, then one claim at a time, then PLB.

    stream = RemittanceStream(transaction)   # reads BPR ... loop 1000B
    for claim in stream.claims():             # one Claim per CLP loop, never the whole file in memory
        ...
    stream.provider_adjustments, stream.balance(), stream.findings   # once the claims are exhausted

Malformed money, dates and missing required elements raise ``X12Error`` naming the segment and element.
Guide rules the payer broke without making the file unreadable (an unknown code value, a claim whose
adjustments do not explain the difference between charge and payment, a payment that is not the sum of the
claims minus the provider adjustments) are *findings*: the posting holds such a file for review instead of
refusing it, and ``rcm x12 validate`` prints them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from rcm.x12.document import Finding
from rcm.x12.envelope import Transaction
from rcm.x12.errors import X12Error
from rcm.x12.remittance_model import (
    ADJUSTMENT_GROUPS,
    CLAIM_STATUSES,
    FILING_INDICATORS,
    HANDLING_CODES,
    PAYMENT_METHODS,
    PLB_REASONS,
    Account,
    Address,
    Adjustment,
    Balance,
    Claim,
    Contact,
    Funds,
    Header,
    Payee,
    Payer,
    Person,
    ProviderAdjustment,
    Reference,
    Remittance,
    ServiceLine,
    claim_imbalance,
    line_imbalance,
)
from rcm.x12.segments import Segment
from rcm.x12.values import cents, date8, quantity, required_cents

# Segments of the claim and line loops that the typed result does not carry (claim AMT/QTY/PER, other
# NM1s such as the crossover carrier): read past, not reported.
_CLAIM_OTHER = frozenset({"PER", "AMT", "QTY"})
_LINE_OTHER = frozenset({"QTY"})
_CLAIM_END = frozenset({"CLP", "LX", "TS3", "TS2", "PLB"})


def _optional(value: str) -> str | None:
    return value or None


def _required(segment: Segment, position: int) -> str:
    value = segment[position]
    if not value:
        raise X12Error(
            "element is required",
            segment_id=segment.id,
            element=position,
            position=segment.index,
            offset=segment.offset,
        )
    return value


def _required_date(segment: Segment, position: int) -> date:
    value = date8(segment, position)
    assert value is not None
    return value


def _finding(segment: Segment, message: str, element: int | None = None) -> Finding:
    return Finding(segment.id, segment.index, element, message)


def _person(segment: Segment) -> Person:
    return Person(
        entity_type=segment[2] or "1",
        last=_optional(segment[3]),
        first=_optional(segment[4]),
        middle=_optional(segment[5]),
        suffix=_optional(segment[7]),
        identifier_qualifier=_optional(segment[8]),
        identifier=_optional(segment[9]),
    )


def _account(segment: Segment, start: int) -> Account:
    return Account(
        dfi_qualifier=_required(segment, start),
        dfi=_required(segment, start + 1),
        account_qualifier=_required(segment, start + 2),
        account=_required(segment, start + 3),
    )


class RemittanceStream:
    """One 835 transaction set read as a stream: ``header`` at once, ``claims()`` lazily, then PLB."""

    def __init__(self, transaction: Transaction) -> None:
        self._segments = iter(transaction)
        self._pending: Segment | None = None
        self._component = transaction.delimiters.component
        self._claims_started = False
        self._finished = False
        self._claims_paid = 0
        self._unbalanced = 0
        self._bpr_position: int | None = None
        self.provider_adjustments: list[ProviderAdjustment] = []
        self.findings: list[Finding] = []
        self.header = self._read_header()

    # -- segment cursor: one segment of look-ahead, so a loop ends at the segment that starts the next one
    def _next(self) -> Segment | None:
        if self._pending is not None:
            segment, self._pending = self._pending, None
            return segment
        return next(self._segments, None)

    def _push(self, segment: Segment) -> None:
        self._pending = segment

    # -- header: BPR, TRN, CUR, REF, DTM, loop 1000A (payer), loop 1000B (payee)
    def _read_header(self) -> Header:  # noqa: PLR0912 - one branch per header segment
        bpr = self._next()
        if bpr is None or bpr.id != "BPR":
            raise X12Error(
                "an 835 starts with BPR",
                segment_id=bpr.id if bpr else "SE",
                position=bpr.index if bpr else None,
            )
        self._bpr_position = bpr.index
        self._check_code(bpr, 1, HANDLING_CODES)
        self._check_code(bpr, 4, PAYMENT_METHODS)
        funds = None
        if bpr[5] or bpr[6]:
            funds = Funds(
                format=_required(bpr, 5),
                sender=_account(bpr, 6),
                originator_id=_required(bpr, 10),
                originator_supplemental=_optional(bpr[11]),
                receiver=_account(bpr, 12),
            )
        trace_number = trace_originator = None
        receiver_id = None
        production = None
        payer: Payer | None = None
        payee: Payee | None = None
        while (segment := self._next()) is not None:
            segment_id = segment.id
            if segment_id == "TRN":
                trace_number, trace_originator = _required(segment, 2), _required(segment, 3)
            elif segment_id == "REF" and segment[1] == "EV":
                receiver_id = _required(segment, 2)
            elif segment_id == "DTM" and segment[1] == "405":
                production = date8(segment, 2)
            elif segment_id == "N1" and segment[1] == "PR":
                payer = self._read_payer(segment)
            elif segment_id == "N1" and segment[1] == "PE":
                payee = self._read_payee(segment)
            elif segment_id in ("CUR", "REF", "DTM"):
                continue
            else:
                self._push(segment)
                break
        if trace_number is None or trace_originator is None:
            raise X12Error("the 835 has no TRN (reassociation trace number)", segment_id="TRN")
        if payer is None:
            raise X12Error("the 835 has no payer (loop 1000A, N1*PR)", segment_id="N1")
        if payee is None:
            raise X12Error("the 835 has no payee (loop 1000B, N1*PE)", segment_id="N1")
        return Header(
            handling=_required(bpr, 1),
            total_paid=required_cents(bpr, 2),
            credit_debit=_required(bpr, 3),
            payment_method=_required(bpr, 4),
            funds=funds,
            payment_date=_required_date(bpr, 16),
            trace_number=trace_number,
            trace_originator=trace_originator,
            receiver_id=receiver_id,
            production_date=production,
            payer=payer,
            payee=payee,
        )

    def _read_address(self, n3: Segment) -> Address:
        n4 = self._next()
        if n4 is None or n4.id != "N4":
            raise X12Error("N3 without N4", segment_id="N3", position=n3.index, offset=n3.offset)
        return Address(
            line1=_required(n3, 1),
            line2=_optional(n3[2]),
            city=_required(n4, 1),
            state=_optional(n4[2]),
            postal_code=_optional(n4[3]),
        )

    def _read_payer(self, n1: Segment) -> Payer:
        address = contact = payer_id = None
        while (segment := self._next()) is not None:
            if segment.id == "N3":
                address = self._read_address(segment)
            elif segment.id == "REF":
                if segment[1] == "2U":
                    payer_id = _required(segment, 2)
            elif segment.id == "PER":
                if segment[1] == "BL" and contact is None:
                    contact = Contact(function="BL", name=_optional(segment[2]), phone=_optional(segment[4]))
            else:
                self._push(segment)
                break
        if address is None:
            self.findings.append(_finding(n1, "the payer loop (1000A) has no N3/N4 address"))
        if contact is None:
            self.findings.append(_finding(n1, "the payer loop (1000A) has no PER*BL technical contact"))
        return Payer(
            name=_required(n1, 2),
            identifier_qualifier=_optional(n1[3]),
            identifier=_optional(n1[4]),
            payer_id=payer_id,
            address=address,
            technical_contact=contact,
        )

    def _read_payee(self, n1: Segment) -> Payee:
        npi = n1[4] if n1[3] == "XX" else None
        tin = n1[4] if n1[3] == "FI" else None
        if not n1[4]:
            self.findings.append(_finding(n1, "the payee has no identifier (N103/N104)", 4))
        address = None
        while (segment := self._next()) is not None:
            if segment.id == "N3":
                address = self._read_address(segment)
            elif segment.id == "REF":
                if segment[1] == "TJ" and tin is None:
                    tin = _required(segment, 2)
            elif segment.id != "RDM":
                self._push(segment)
                break
        return Payee(name=_required(n1, 2), npi=npi or None, tin=tin or None, address=address)

    # -- claims
    def claims(self) -> Iterator[Claim]:
        """Each claim (loop 2100) in file order; after the last, PLB is read and the balance checked."""
        if self._claims_started:
            raise RuntimeError("an 835's claims are read once")
        self._claims_started = True
        while (segment := self._next()) is not None:
            segment_id = segment.id
            if segment_id == "CLP":
                claim = self._read_claim(segment)
                self._claims_paid += claim.paid
                yield claim
            elif segment_id == "PLB":
                self._read_plb(segment)
            elif segment_id in ("LX", "TS3", "TS2"):
                continue
            else:
                self.findings.append(_finding(segment, "segment not expected here in an 835"))
        self._finished = True

    def finish(self) -> None:
        """Reads whatever claims are left (PLB follows them), so ``balance()`` covers the whole set."""
        if not self._claims_started:
            for _ in self.claims():
                pass
        elif not self._finished:
            raise RuntimeError("the claims of the 835 were left half read")

    def _read_claim(self, clp: Segment) -> Claim:  # noqa: PLR0912 - one branch per segment of loop 2100
        self._check_code(clp, 2, CLAIM_STATUSES)
        self._check_code(clp, 6, FILING_INDICATORS)
        adjustments: list[Adjustment] = []
        lines: list[ServiceLine] = []
        references: list[Reference] = []
        remarks: tuple[str, ...] = ()
        inpatient: tuple[str, ...] = ()
        patient = insured = rendering = None
        start = end = received = None
        while (segment := self._next()) is not None:
            segment_id = segment.id
            if segment_id == "CAS":
                self._read_cas(segment, adjustments)
            elif segment_id == "NM1":
                qualifier = segment[1]
                if qualifier == "QC":
                    patient = _person(segment)
                elif qualifier == "IL":
                    insured = _person(segment)
                elif qualifier == "82":
                    rendering = _person(segment)
            elif segment_id == "MOA":
                remarks = tuple(code for code in segment.elements[3:8] if code)
            elif segment_id == "MIA":
                inpatient = tuple(segment[p] for p in (5, 20, 21, 22, 23) if segment[p])
            elif segment_id == "REF":
                references.append(Reference(_required(segment, 1), _required(segment, 2)))
            elif segment_id == "DTM":
                qualifier = segment[1]
                if qualifier == "232":
                    start = date8(segment, 2)
                elif qualifier == "233":
                    end = date8(segment, 2)
                elif qualifier == "050":
                    received = date8(segment, 2)
            elif segment_id == "SVC":
                lines.append(self._read_line(segment))
            elif segment_id in _CLAIM_END:
                self._push(segment)
                break
            elif segment_id not in _CLAIM_OTHER:
                self.findings.append(_finding(segment, "segment not expected in a claim loop (2100)"))
        if patient is None:
            raise X12Error(
                "the claim has no patient (NM1*QC)",
                segment_id="CLP",
                position=clp.index,
                offset=clp.offset,
            )
        claim = Claim(
            patient_control_number=_required(clp, 1),
            status=_required(clp, 2),
            charge=required_cents(clp, 3),
            paid=required_cents(clp, 4),
            patient_responsibility=cents(clp, 5, required=False),
            filing_indicator=_required(clp, 6),
            payer_claim_control_number=_required(clp, 7),
            facility_type=_optional(clp[8]),
            frequency=_optional(clp[9]),
            adjustments=tuple(adjustments),
            patient=patient,
            insured=insured,
            rendering=rendering,
            remarks=remarks,
            inpatient_remarks=inpatient,
            references=tuple(references),
            service_start=start,
            service_end=end,
            received=received,
            lines=tuple(lines),
        )
        difference = claim_imbalance(claim)
        if difference:
            self._unbalanced += 1
            self.findings.append(
                _finding(
                    clp,
                    "claim does not balance: charge minus payment differs from the sum of its claim and line "
                    f"adjustments by {difference} cents",
                )
            )
        return claim

    def _read_cas(self, cas: Segment, into: list[Adjustment]) -> None:
        group = _required(cas, 1)
        if group not in ADJUSTMENT_GROUPS:
            self.findings.append(_finding(cas, "adjustment group code not valid in 5010", 1))
        for start in range(2, 20, 3):
            if not cas[start]:
                if cas[start + 1]:
                    raise X12Error(
                        "adjustment amount without a reason code",
                        segment_id="CAS",
                        element=start,
                        position=cas.index,
                        offset=cas.offset,
                    )
                continue
            into.append(
                Adjustment(
                    group=group,
                    reason=cas[start],
                    amount=required_cents(cas, start + 1),
                    quantity=quantity(cas, start + 2),
                )
            )

    def _read_line(self, svc: Segment) -> ServiceLine:  # noqa: PLR0912 - one branch per segment of 2110
        procedure = _required(svc, 1).split(self._component)
        if len(procedure) < 2 or not procedure[1]:
            raise X12Error(
                "the procedure has no code (SVC01-2)",
                segment_id="SVC",
                element=1,
                position=svc.index,
                offset=svc.offset,
            )
        adjustments: list[Adjustment] = []
        remarks: list[str] = []
        start = end = None
        control = None
        allowed = None
        while (segment := self._next()) is not None:
            segment_id = segment.id
            if segment_id == "CAS":
                self._read_cas(segment, adjustments)
            elif segment_id == "DTM":
                qualifier = segment[1]
                if qualifier == "472":
                    start = end = date8(segment, 2)
                elif qualifier == "150":
                    start = date8(segment, 2)
                elif qualifier == "151":
                    end = date8(segment, 2)
            elif segment_id == "REF":
                if segment[1] == "6R":
                    control = _required(segment, 2)
            elif segment_id == "AMT":
                if segment[1] == "B6":
                    allowed = cents(segment, 2)
            elif segment_id == "LQ":
                remarks.append(_required(segment, 2))
            elif segment_id in _LINE_OTHER:
                continue
            else:
                self._push(segment)
                break
        line = ServiceLine(
            qualifier=procedure[0],
            code=procedure[1],
            modifiers=tuple(m for m in procedure[2:6] if m),
            charge=required_cents(svc, 2),
            paid=required_cents(svc, 3),
            revenue_code=_optional(svc[4]),
            units=quantity(svc, 5),
            service_start=start,
            service_end=end,
            adjustments=tuple(adjustments),
            control_number=control,
            allowed=allowed,
            remarks=tuple(remarks),
        )
        if line_imbalance(line):
            self.findings.append(
                _finding(svc, "service line does not balance: charge minus payment is not its adjustments")
            )
        return line

    def _read_plb(self, plb: Segment) -> None:
        provider = _required(plb, 1)
        period_end = _required_date(plb, 2)
        for start in range(3, 15, 2):
            if not plb[start]:
                continue
            reason, _, reference = plb[start].partition(self._component)
            if reason not in PLB_REASONS:
                self.findings.append(_finding(plb, "provider adjustment reason code not in the guide", start))
            self.provider_adjustments.append(
                ProviderAdjustment(
                    provider_id=provider,
                    fiscal_period_end=period_end,
                    reason=reason,
                    reference=reference or None,
                    amount=required_cents(plb, start + 1),
                )
            )

    def _check_code(self, segment: Segment, position: int, codes: frozenset[str]) -> None:
        if segment[position] not in codes:
            self.findings.append(_finding(segment, "code value not in the implementation guide", position))

    # -- balance: once the claims have been read
    def balance(self) -> Balance:
        """BPR02 = Σ CLP04 - Σ PLB; adds a finding when it does not hold. Reads what is left first."""
        self.finish()
        adjusted = sum(adjustment.amount for adjustment in self.provider_adjustments)
        balanced = self.header.total_paid == self._claims_paid - adjusted
        return Balance(
            total_paid=self.header.total_paid,
            claims_paid=self._claims_paid,
            provider_adjustments=adjusted,
            balanced=balanced,
            unbalanced_claims=self._unbalanced,
        )

    def transaction_findings(self) -> list[Finding]:
        """Every finding, the transaction's balance included (call once the claims have been read)."""
        findings = list(self.findings)
        balance = self.balance()
        if not balance.balanced:
            difference = balance.total_paid - balance.claims_paid + balance.provider_adjustments
            findings.append(
                Finding(
                    "BPR",
                    self._bpr_position,
                    2,
                    "total payment is not the sum of the claim payments minus the provider adjustments "
                    f"(off by {difference} cents)",
                )
            )
        return findings


def read(transaction: Transaction) -> Remittance:
    """The whole 835 transaction set as one ``Remittance`` (``rcm x12 parse``; small files, tests)."""
    stream = RemittanceStream(transaction)
    claims = tuple(stream.claims())
    findings = stream.transaction_findings()
    return Remittance(
        header=stream.header,
        claims=claims,
        provider_adjustments=tuple(stream.provider_adjustments),
        balance=stream.balance(),
        findings=tuple(findings),
    )


def check(transaction: Transaction) -> Iterator[Finding]:
    """The 835's guide rules: required segments, code values, claim, line and transaction balancing."""
    stream = RemittanceStream(transaction)
    try:
        stream.finish()
    except X12Error:
        # What was found before the break still matters to whoever reads the report; the break follows.
        yield from stream.findings
        raise
    yield from stream.transaction_findings()
