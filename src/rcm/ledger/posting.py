"""What goes on the ledger, computed without a database: each posting as a list of signed entries summing to
zero (double entry; positive is a debit), from a claim built or reversed and from an 835 transaction set.

Charges: per claim line, the insurance receivable debited and gross charges credited; a void or a
replacement posts the same entries negated. An 835 claim (CLP): the payment (CLP04) moves from the insurance
receivable to payments; each adjustment (claim and line CAS) moves out of the insurance receivable, to the
patient's receivable for group PR (patient responsibility), to adjustments (by group and CARC) otherwise. A
reversal (CLP02 22) carries negative amounts, so the same rules post it as negative entries. A CLP matching no
claim of the practice posts its payment to ``unapplied``. A PLB adjustment (positive: money withheld) moves
out of payments to provider adjustments, or to interest for reason L6 (a negative amount: money added).

Coordination of benefits: a secondary (or tertiary) claim bills the next payer for what the previous payer's
835 left to the patient, so when it is built that amount moves off the previous claim's patient receivable
onto the new claim's insurance receivable (one posting, an entry on each claim); a void or replacement of the
new claim moves what still stands back. The next payer's 835 then clears the new claim as any 835 does,
except its CARC 23 adjustments ("the impact of prior payer(s) adjudication"): that part of the claim was
settled on the previous claim's ledger, and is not posted twice.

A transaction set is posted only when it balances: BPR02 = Σ CLP04 - Σ PLB, and per claim CLP03 - CLP04 =
Σ CAS; else ``hold_reason`` says why, and nothing of the set is posted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rcm.kit.models import time_ordered_uuid
from rcm.ledger.models import Account, Source
from rcm.x12.remittance_model import (
    Adjustment,
    Claim,
    Header,
    ProviderAdjustment,
    ServiceLine,
    claim_imbalance,
)

PATIENT_GROUP = "PR"
INTEREST_REASON = "L6"
PRIOR_PAYER_REASON = "23"  # CARC 23: the impact of prior payer(s) adjudication (payments and adjustments)


@dataclass(frozen=True, slots=True)
class Entry:
    account: Account
    amount: int
    claim_id: uuid.UUID | None = None
    line_number: int | None = None
    group: str | None = None
    reason: str | None = None
    remarks: tuple[str, ...] = ()
    segment: str | None = None
    position: int | None = None


@dataclass(slots=True)
class Draft:
    """One posting to be: its source, the claim it concerns and its entries (zero amounts left out)."""

    source: Source
    claim_id: uuid.UUID | None = None
    entries: list[Entry] = field(default_factory=list)
    # The posting's, known before it is written; time-ordered, as its entries' (``LedgerRepository.post``).
    id: uuid.UUID = field(default_factory=time_ordered_uuid)

    def add(
        self,
        debit: Account,
        credit: Account,
        amount: int,
        *,
        line_number: int | None = None,
        group: str | None = None,
        reason: str | None = None,
        remarks: tuple[str, ...] = (),
        segment: str | None = None,
        position: int | None = None,
    ) -> None:
        """``amount`` debited to ``debit`` and credited to ``credit`` (nothing when zero)."""
        if not amount:
            return
        for account, signed in ((debit, amount), (credit, -amount)):
            self.entries.append(
                Entry(account, signed, self.claim_id, line_number, group, reason, remarks, segment, position)
            )

    @property
    def total(self) -> int:
        return sum(entry.amount for entry in self.entries)


# -- charges


def charges(claim_id: uuid.UUID, lines: Iterable[tuple[int, int]]) -> Draft:
    """A claim built: (line number, charge in cents) per line."""
    draft = Draft(Source.CLAIM_BUILT, claim_id)
    for line_number, charge in lines:
        draft.add(
            Account.INSURANCE_RECEIVABLE,
            Account.CHARGES,
            charge,
            line_number=line_number,
            segment="CLM",
            position=line_number,
        )
    return draft


def reversed_charges(claim_id: uuid.UUID, charged: dict[int | None, int], source: Source) -> Draft:
    """The charges still standing on the claim (per line: what ``charges`` credited, as a positive amount),
    reversed."""
    draft = Draft(source, claim_id)
    for line_number, amount in sorted(charged.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        draft.add(
            Account.CHARGES,
            Account.INSURANCE_RECEIVABLE,
            amount,
            line_number=line_number,
            segment="CLM",
            position=line_number,
        )
    return draft


# -- coordination of benefits


def coordination(prior_claim_id: uuid.UUID, claim_id: uuid.UUID, amount: int) -> Draft:
    """The patient's share ``amount`` on the prior payer's claim, now billed to the next payer on
    ``claim_id``: off the patient's receivable (on the prior claim), onto the insurance receivable (on the
    new claim)."""
    draft = Draft(Source.COORDINATION_OF_BENEFITS, claim_id)
    if amount:
        draft.entries += [
            Entry(Account.INSURANCE_RECEIVABLE, amount, claim_id, group=PATIENT_GROUP, segment="CLP"),
            Entry(Account.PATIENT_RECEIVABLE, -amount, prior_claim_id, group=PATIENT_GROUP, segment="CLP"),
        ]
    return draft


def reversed_coordination(claim_id: uuid.UUID, standing: dict[uuid.UUID, int]) -> Draft:
    """What the claim still holds of each prior claim's patient share (``standing``), given back to it."""
    draft = Draft(Source.COORDINATION_REVERSED, claim_id)
    for prior_claim_id, amount in sorted(standing.items(), key=lambda kv: str(kv[0])):
        if amount:
            draft.entries += [
                Entry(Account.PATIENT_RECEIVABLE, amount, prior_claim_id, group=PATIENT_GROUP, segment="CLP"),
                Entry(Account.INSURANCE_RECEIVABLE, -amount, claim_id, group=PATIENT_GROUP, segment="CLP"),
            ]
    return draft


def patient_share(claim: Claim) -> int:
    """What an 835 CLP posts to the patient's receivable: its PR adjustments, claim and lines."""
    every = [*claim.adjustments, *(a for line in claim.lines for a in line.adjustments)]
    return sum(a.amount for a in every if a.group == PATIENT_GROUP)


# -- 835


def hold_reason(
    header: Header, claims: Sequence[Claim], adjustments: Sequence[ProviderAdjustment]
) -> str | None:
    """Why the transaction set may not be posted (no PHI: positions and cents only), or None."""
    claims_paid = sum(claim.paid for claim in claims)
    withheld = sum(adjustment.amount for adjustment in adjustments)
    off = header.total_paid - claims_paid + withheld
    if off:
        return (
            f"BPR02 ({header.total_paid} cents) is not the claim payments ({claims_paid} cents) minus the "
            f"provider adjustments ({withheld} cents): off by {off} cents"
        )
    for ordinal, claim in enumerate(claims, start=1):
        off = claim_imbalance(claim)
        if off:
            return f"CLP {ordinal}: CLP03 - CLP04 is not the sum of its adjustments (CAS): off by {off} cents"
    return None


def claim_payment(
    claim: Claim,
    ordinal: int,
    claim_id: uuid.UUID | None,
    line_numbers: Sequence[int | None],
    *,
    after_prior_payer: bool = False,
) -> Draft:
    """One CLP (the ``ordinal``-th of its set): ``line_numbers`` are the claim's line matching each SVC
    (None when not matched). Unmatched claims post their payment as unapplied. On a claim billed after a
    prior payer (``after_prior_payer``), CARC 23 adjustments are the prior payer's part, posted on its own
    claim already: left out."""
    draft = Draft(Source.REMITTANCE_CLAIM, claim_id)
    remarks = claim.remarks + claim.inpatient_remarks
    if claim_id is None:
        draft.add(Account.PAYMENTS, Account.UNAPPLIED, claim.paid, segment="CLP", position=ordinal)
        return draft
    draft.add(
        Account.PAYMENTS,
        Account.INSURANCE_RECEIVABLE,
        claim.paid,
        remarks=remarks,
        segment="CLP",
        position=ordinal,
    )
    for adjustment in claim.adjustments:
        if not (after_prior_payer and adjustment.reason == PRIOR_PAYER_REASON):
            _adjust(draft, adjustment, None, remarks, ordinal)
    for line, line_number in zip(claim.lines, line_numbers, strict=True):
        for adjustment in line.adjustments:
            if not (after_prior_payer and adjustment.reason == PRIOR_PAYER_REASON):
                _adjust(draft, adjustment, line_number, line.remarks, ordinal)
    return draft


def _adjust(
    draft: Draft, adjustment: Adjustment, line_number: int | None, remarks: tuple[str, ...], ordinal: int
) -> None:
    to = Account.PATIENT_RECEIVABLE if adjustment.group == PATIENT_GROUP else Account.ADJUSTMENTS
    draft.add(
        to,
        Account.INSURANCE_RECEIVABLE,
        adjustment.amount,
        line_number=line_number,
        group=adjustment.group,
        reason=adjustment.reason,
        remarks=remarks,
        segment="CAS",
        position=ordinal,
    )


def provider_adjustments(adjustments: Sequence[ProviderAdjustment]) -> list[Draft]:
    """One posting per PLB adjustment (positive: withheld from the payment)."""
    drafts = []
    for ordinal, adjustment in enumerate(adjustments, start=1):
        draft = Draft(Source.PROVIDER_ADJUSTMENT)
        to = Account.INTEREST if adjustment.reason == INTEREST_REASON else Account.PROVIDER_ADJUSTMENTS
        draft.add(
            to, Account.PAYMENTS, adjustment.amount, reason=adjustment.reason, segment="PLB", position=ordinal
        )
        if draft.entries:
            drafts.append(draft)
    return drafts


# -- service lines


@dataclass(frozen=True, slots=True)
class BilledLine:
    """A claim line as built (what an SVC is matched to)."""

    line_number: int
    procedure: str
    modifiers: tuple[str, ...]
    service_date: object


def match_lines(paid: Sequence[ServiceLine], billed: Sequence[BilledLine]) -> list[int | None]:
    """The claim line each SVC pays: by REF*6R (our line number), else by procedure, modifiers (in any
    order) and date of service, else by procedure and date alone (a payer dropping a modifier); each
    claim line taken once. None when nothing fits (a bundled or unlisted line: posted at claim level)."""
    free = {line.line_number: line for line in billed}
    found: list[int | None] = []
    for line in paid:
        number = _by_control(line, free)
        if number is None:
            number = _by_code(line, free, modifiers=True)
        if number is None:
            number = _by_code(line, free, modifiers=False)
        if number is not None:
            free.pop(number)
        found.append(number)
    return found


def _by_control(line: ServiceLine, free: dict[int, BilledLine]) -> int | None:
    control = line.control_number
    if control and control.isdigit() and int(control) in free:
        return int(control)
    return None


def _by_code(line: ServiceLine, free: dict[int, BilledLine], *, modifiers: bool) -> int | None:
    for number, billed in free.items():
        if billed.procedure != line.code:
            continue
        if line.service_start is not None and billed.service_date != line.service_start:
            continue
        if modifiers and sorted(billed.modifiers) != sorted(line.modifiers):
            continue
        return number
    return None
