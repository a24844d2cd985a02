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

from rcm.x12.document import Finding
from rcm.x12.envelope import Transaction
from rcm.x12.errors import X12Error
from rcm.x12.remittance_header import (
    HeaderReader,
    finding,
    padded,
    person,
    required_date,
)
from rcm.x12.remittance_model import (
    ADJUSTMENT_GROUPS,
    CLAIM_STATUSES,
    FILING_INDICATORS,
    PLB_REASONS,
    Adjustment,
    Balance,
    Claim,
    ClaimSource,
    ProviderAdjustment,
    Reference,
    Remittance,
    ServiceLine,
    balance_off,
)
from rcm.x12.segments import Segment
from rcm.x12.values import cents, date8, quantity, required, required_cents

# Segments of the claim and line loops that the typed result does not carry (claim AMT/QTY/PER, other
# NM1s such as the crossover carrier): read past, not reported.
_CLAIM_OTHER = frozenset({"PER", "AMT", "QTY"})
_LINE_OTHER = frozenset({"QTY"})
_CLAIM_END = frozenset({"CLP", "LX", "TS3", "TS2", "PLB"})


class RemittanceStream(HeaderReader):
    """One 835 transaction set read as a stream: ``header`` at once, ``claims()`` lazily, then PLB."""

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(iter(transaction))
        self._component = transaction.delimiters.component
        self._claims_started = False
        self._finished = False
        self._claims_paid = 0
        self._unbalanced = 0
        self.provider_adjustments: list[ProviderAdjustment] = []
        # Segment positions within the set (ST is 1): per claim read, its parts' (``ClaimSource``); per
        # provider adjustment, its PLB's.
        self._base = transaction.st.index - 1
        self.sources: list[ClaimSource] = []
        self.provider_adjustment_positions: list[int] = []
        self.header = self._read_header()

    # -- claims
    def claims(self) -> Iterator[Claim]:
        """Each claim (loop 2100) in file order; after the last, PLB is read and the balance checked."""
        if self._claims_started:
            raise RuntimeError("an 835's claims are read once")
        self._claims_started = True
        while (segment := self._next()) is not None:
            segment_id = segment.elements[0]
            if segment_id == "CLP":
                claim = self._read_claim(segment)
                self._claims_paid += claim.paid
                yield claim
            elif segment_id == "PLB":
                self._read_plb(segment)
            elif segment_id in ("LX", "TS3", "TS2"):
                continue
            else:
                self.findings.append(finding(segment, "segment not expected here in an 835"))
        self._finished = True

    def finish(self) -> None:
        """Reads whatever claims are left (PLB follows them), so ``balance()`` covers the whole set."""
        if not self._claims_started:
            for _ in self.claims():
                pass
        elif not self._finished:
            raise RuntimeError("the claims of the 835 were left half read")

    def _read_claim(self, clp: Segment) -> Claim:  # noqa: PLR0912, PLR0915 - a branch per segment of 2100
        c = padded(clp, 9)
        if c[2] not in CLAIM_STATUSES:
            self._check_code(clp, 2, CLAIM_STATUSES)
        if c[6] not in FILING_INDICATORS:
            self._check_code(clp, 6, FILING_INDICATORS)
        adjustments: list[Adjustment] = []
        adjusted = 0  # the claim's and its lines' CAS amounts, summed as they are read
        lines: list[ServiceLine] = []
        references: list[Reference] = []
        remarks: tuple[str, ...] = ()
        inpatient: tuple[str, ...] = ()
        patient = insured = rendering = None
        start = end = received = None
        interest = interest_at = None
        base = self._base
        adjusted_at: list[int] = []  # each claim adjustment's CAS position
        lines_at: list[int] = []
        line_adjusted_at: list[tuple[int, ...]] = []
        # The hot loop of the file: segments straight from the transaction's iterator, ``elements[0]`` rather
        # than the ``id`` property; a service line hands back the segment that ended it.
        segments = self._segments
        segment = next(segments, None)
        while segment is not None:
            e = segment.elements
            segment_id = e[0]
            qualifier = e[1] if len(e) > 1 else ""
            if segment_id == "SVC":
                line, line_adjusted, positions = self._read_line(segment)
                lines.append(line)
                lines_at.append(segment.index - base)
                line_adjusted_at.append(positions)
                adjusted += line_adjusted
                segment = self._next()
                continue
            if segment_id == "CAS":
                adjusted += self._read_cas(segment, adjustments)
                adjusted_at += [segment.index - base] * (len(adjustments) - len(adjusted_at))
            elif segment_id == "AMT" and qualifier == "I":
                interest, interest_at = cents(segment, 2), segment.index - base
            elif segment_id == "NM1":
                if qualifier == "QC":
                    patient = person(segment)
                elif qualifier == "IL":
                    insured = person(segment)
                elif qualifier == "82":
                    rendering = person(segment)
            elif segment_id == "MOA":
                remarks = tuple(code for code in segment.elements[3:8] if code)
            elif segment_id == "MIA":
                inpatient = tuple(segment[p] for p in (5, 20, 21, 22, 23) if segment[p])
            elif segment_id == "REF":
                value = e[2] if len(e) > 2 else ""
                references.append(Reference(qualifier or required(segment, 1), value or required(segment, 2)))
            elif segment_id == "DTM":
                if qualifier == "232":
                    start = date8(segment, 2)
                elif qualifier == "233":
                    end = date8(segment, 2)
                elif qualifier == "050":
                    received = date8(segment, 2)
            elif segment_id in _CLAIM_END:
                self._push(segment)
                break
            elif segment_id not in _CLAIM_OTHER:
                self.findings.append(finding(segment, "segment not expected in a claim loop (2100)"))
            segment = next(segments, None)
        if patient is None:
            raise X12Error(
                "the claim has no patient (NM1*QC)",
                segment_id="CLP",
                position=clp.index,
                offset=clp.offset,
            )
        e = c
        # By position, in the order Claim declares (see its docstring): this runs once per claim.
        claim = Claim(
            e[1] or required(clp, 1),
            e[2] or required(clp, 2),
            required_cents(clp, 3),
            required_cents(clp, 4),
            e[6] or required(clp, 6),
            e[7] or required(clp, 7),
            patient,
            cents(clp, 5, required=False),
            e[8] or None,
            e[9] or None,
            tuple(adjustments),
            insured,
            rendering,
            remarks,
            inpatient,
            tuple(references),
            start,
            end,
            received,
            tuple(lines),
            interest,
        )
        self.sources.append(
            ClaimSource(
                clp.index - base, tuple(adjusted_at), interest_at, tuple(lines_at), tuple(line_adjusted_at)
            )
        )
        self._check_claim_balance(clp, balance_off(claim.charge - claim.paid - adjusted, interest))
        return claim

    def _check_claim_balance(self, clp: Segment, difference: int) -> None:
        """CLP03 - CLP04 against the claim's and lines' CAS (``claim_imbalance`` of the model, computed as
        the segments were read)."""
        if difference:
            self._unbalanced += 1
            self.findings.append(
                finding(
                    clp,
                    "claim does not balance: charge minus payment differs from the sum of its claim and line "
                    f"adjustments by {difference} cents",
                )
            )

    def _read_cas(self, cas: Segment, into: list[Adjustment]) -> int:
        """The segment's adjustments appended to ``into``; returns their total in cents."""
        total = 0
        group = required(cas, 1)
        if group not in ADJUSTMENT_GROUPS:
            self.findings.append(finding(cas, "adjustment group code not valid in 5010", 1))
        # Up to six reason/amount/quantity triples (CAS02-19): only those the segment carries are looked at.
        elements = cas.elements
        count = min(len(elements), 20)
        for start in range(2, count, 3):
            reason = elements[start]
            if not reason:
                if start + 1 < count and elements[start + 1]:
                    raise X12Error(
                        "adjustment amount without a reason code",
                        segment_id="CAS",
                        element=start,
                        position=cas.index,
                        offset=cas.offset,
                    )
                continue
            amount = required_cents(cas, start + 1)
            total += amount
            into.append(
                Adjustment(
                    group=group,
                    reason=reason,
                    amount=amount,
                    quantity=quantity(cas, start + 2) if start + 2 < count else None,
                )
            )
        return total

    def _read_line(  # noqa: PLR0912 - a branch per segment
        self, svc: Segment
    ) -> tuple[ServiceLine, int, tuple[int, ...]]:
        """Loop 2110, with the total of its CAS amounts and each adjustment's CAS position in the set."""
        procedure = required(svc, 1).split(self._component)
        if len(procedure) < 2 or not procedure[1]:
            raise X12Error(
                "the procedure has no code (SVC01-2)",
                segment_id="SVC",
                element=1,
                position=svc.index,
                offset=svc.offset,
            )
        adjustments: list[Adjustment] = []
        adjusted = 0
        remarks: list[str] = []
        start = end = None
        control = None
        allowed = None
        adjusted_at: list[int] = []
        for segment in self._segments:
            e = segment.elements
            segment_id = e[0]
            qualifier = e[1] if len(e) > 1 else ""
            if segment_id == "CAS":
                adjusted += self._read_cas(segment, adjustments)
                adjusted_at += [segment.index - self._base] * (len(adjustments) - len(adjusted_at))
            elif segment_id == "DTM":
                if qualifier == "472":
                    start = end = date8(segment, 2)
                elif qualifier == "150":
                    start = date8(segment, 2)
                elif qualifier == "151":
                    end = date8(segment, 2)
            elif segment_id == "REF":
                if qualifier == "6R":
                    control = (e[2] if len(e) > 2 else "") or required(segment, 2)
            elif segment_id == "AMT":
                if qualifier == "B6":
                    allowed = cents(segment, 2)
            elif segment_id == "LQ":
                remarks.append((e[2] if len(e) > 2 else "") or required(segment, 2))
            elif segment_id in _LINE_OTHER:
                continue
            else:
                self._push(segment)
                break
        e = padded(svc, 6)
        original = e[6].split(self._component) if e[6] else None
        line = ServiceLine(
            qualifier=procedure[0],
            code=procedure[1],
            modifiers=tuple(m for m in procedure[2:6] if m),
            charge=required_cents(svc, 2),
            paid=required_cents(svc, 3),
            revenue_code=e[4] or None,
            units=quantity(svc, 5) if e[5] else None,
            service_start=start,
            service_end=end,
            adjustments=tuple(adjustments),
            control_number=control,
            allowed=allowed,
            remarks=tuple(remarks),
            original_code=original[1] if original and len(original) > 1 and original[1] else None,
            original_modifiers=tuple(m for m in original[2:6] if m) if original else (),
        )
        if line.charge - line.paid != adjusted:  # line_imbalance of the model
            self.findings.append(
                finding(svc, "service line does not balance: charge minus payment is not its adjustments")
            )
        return line, adjusted, tuple(adjusted_at)

    def _read_plb(self, plb: Segment) -> None:
        provider = required(plb, 1)
        period_end = required_date(plb, 2)
        for start in range(3, 15, 2):
            if not plb[start]:
                continue
            reason, _, reference = plb[start].partition(self._component)
            if reason not in PLB_REASONS:
                self.findings.append(finding(plb, "provider adjustment reason code not in the guide", start))
            self.provider_adjustment_positions.append(plb.index - self._base)
            self.provider_adjustments.append(
                ProviderAdjustment(
                    provider_id=provider,
                    fiscal_period_end=period_end,
                    reason=reason,
                    reference=reference or None,
                    amount=required_cents(plb, start + 1),
                )
            )

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
