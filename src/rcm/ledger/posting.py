"""What goes on the ledger, computed without a database: each posting as a list of signed entries summing to
zero (double entry; positive is a debit), from a claim built or reversed and from an 835 transaction set.

Charges: per claim line, the insurance receivable debited and gross charges credited; a void or a
replacement posts the same entries negated. An 835 claim (CLP): the payment (CLP04) moves from the insurance
receivable to payments; each adjustment (claim and line CAS) moves out of the insurance receivable, to the
patient's receivable for group PR (patient responsibility), to adjustments (by group and CARC) otherwise. A
reversal (CLP02 22) carries negative amounts, so the same rules post it as negative entries. A CLP matching no
claim of the practice posts its payment to ``unapplied``. A PLB adjustment (positive: money withheld) moves
out of payments to provider adjustments, or to interest for reason L6 (a negative amount: money added).

Service lines: each SVC's payment (SVC03) and adjustments post on the claim lines it pays (``lines``:
matched by REF*6R, procedure, modifiers and date, bundled and split lines included; a bundled SVC's amounts
shared among its lines by their charges, to the cent); what CLP04 holds beyond the lines' payments (claim
level CAS deductions, a claim without SVC) posts at claim level. Interest (AMT*I) is included in CLP04:
that part moves from payments to interest (income), not off the receivable.

Each entry points at its source segment: the segment name, the CLP's (or PLB adjustment's) ordinal in its
set (``position``) and the segment's own position within the transaction set, ST being 1 (``index``).

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

import msgspec

from rcm.kit.models import time_ordered_uuid
from rcm.ledger.lines import LineShare, allocate
from rcm.ledger.models import Account, Source
from rcm.x12.remittance_model import (
    Adjustment,
    Claim,
    ClaimSource,
    Header,
    ProviderAdjustment,
    claim_imbalance,
    interest_paid,
)

PATIENT_GROUP = "PR"
INTEREST_REASON = "L6"
PRIOR_PAYER_REASON = "23"  # CARC 23: the impact of prior payer(s) adjudication (payments and adjustments)
# The accounts an 835 posts to, looked up once: a member read from its enum class costs a descriptor call
# (about 0.3 us on 3.11), and a 10,000-claim file posts over 100,000 entries.
_PAYMENTS, _UNAPPLIED, _INTEREST = Account.PAYMENTS, Account.UNAPPLIED, Account.INTEREST
_INSURANCE_RECEIVABLE, _PATIENT_RECEIVABLE = Account.INSURANCE_RECEIVABLE, Account.PATIENT_RECEIVABLE
_ADJUSTMENTS, _PROVIDER_ADJUSTMENTS = Account.ADJUSTMENTS, Account.PROVIDER_ADJUSTMENTS


class Entry(msgspec.Struct, frozen=True, gc=False):
    """One side of a posting. A msgspec Struct: an 835 of 10,000 claims makes over 100,000 of them, and a
    Struct is built in C (a frozen dataclass sets each of its ten fields through ``object.__setattr__``).
    Not tracked by the garbage collector: it holds strings, ints, a UUID and a tuple of strings, no cycle."""

    account: Account
    amount: int
    claim_id: uuid.UUID | None = None
    line_number: int | None = None
    group: str | None = None
    reason: str | None = None
    remarks: tuple[str, ...] = ()
    segment: str | None = None
    position: int | None = None
    index: int | None = None  # the source segment's position within its transaction set (ST is 1)


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
        index: int | None = None,
    ) -> None:
        """``amount`` debited to ``debit`` and credited to ``credit`` (nothing when zero)."""
        if not amount:
            return
        claim_id = self.claim_id
        self.entries += (
            Entry(debit, amount, claim_id, line_number, group, reason, remarks, segment, position, index),
            Entry(credit, -amount, claim_id, line_number, group, reason, remarks, segment, position, index),
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
    line_numbers: Sequence[int | LineShare | None],
    *,
    after_prior_payer: bool = False,
    source: ClaimSource | None = None,
) -> Draft:
    """One CLP (the ``ordinal``-th of its set): ``line_numbers`` are the claim lines each SVC pays (a line
    number, a ``LineShare`` for a bundled SVC, None or () when not matched); ``source`` where its segments
    were read. Unmatched claims post their payment as unapplied. On a claim billed after a prior payer
    (``after_prior_payer``), CARC 23 adjustments are the prior payer's part, posted on its own claim
    already: left out."""
    draft = Draft(Source.REMITTANCE_CLAIM, claim_id)
    remarks = claim.remarks + claim.inpatient_remarks
    clp_at = source.clp if source is not None else None
    if claim_id is None:
        draft.add(_PAYMENTS, _UNAPPLIED, claim.paid, segment="CLP", position=ordinal, index=clp_at)
        return draft
    shares = [_share(n) for n in line_numbers]
    interest = interest_paid(claim)
    lines_paid = sum(line.paid for line, share in zip(claim.lines, shares, strict=True) if share)
    draft.add(
        _PAYMENTS,
        _INSURANCE_RECEIVABLE,
        claim.paid - interest - lines_paid,
        remarks=remarks,
        segment="CLP",
        position=ordinal,
        index=clp_at,
    )
    if interest:
        at = source.interest if source is not None else None
        draft.add(_PAYMENTS, _INTEREST, interest, segment="AMT", position=ordinal, index=at)
    for i, adjustment in enumerate(claim.adjustments):
        if not (after_prior_payer and adjustment.reason == PRIOR_PAYER_REASON):
            at = source.adjustments[i] if source is not None else None
            _adjust(draft, adjustment, (), remarks, ordinal=ordinal, index=at)
    for j, (line, share) in enumerate(zip(claim.lines, shares, strict=True)):
        svc_at = source.lines[j] if source is not None else None
        if share:
            for number, part in allocate(line.paid, share):
                draft.add(
                    _PAYMENTS,
                    _INSURANCE_RECEIVABLE,
                    part,
                    line_number=number,
                    remarks=line.remarks,
                    segment="SVC",
                    position=ordinal,
                    index=svc_at,
                )
        for k, adjustment in enumerate(line.adjustments):
            if not (after_prior_payer and adjustment.reason == PRIOR_PAYER_REASON):
                at = source.line_adjustments[j][k] if source is not None else None
                _adjust(draft, adjustment, share, line.remarks, ordinal=ordinal, index=at)
    return draft


def _share(line_number: int | LineShare | None) -> LineShare:
    if line_number is None:
        return ()
    if isinstance(line_number, int):
        return ((line_number, 1),)
    return line_number


def _adjust(
    draft: Draft,
    adjustment: Adjustment,
    share: LineShare,
    remarks: tuple[str, ...],
    *,
    ordinal: int,
    index: int | None,
) -> None:
    to = _PATIENT_RECEIVABLE if adjustment.group == PATIENT_GROUP else _ADJUSTMENTS
    for line_number, part in allocate(adjustment.amount, share):
        draft.add(
            to,
            _INSURANCE_RECEIVABLE,
            part,
            line_number=line_number,
            group=adjustment.group,
            reason=adjustment.reason,
            remarks=remarks,
            segment="CAS",
            position=ordinal,
            index=index,
        )


def provider_adjustments(
    adjustments: Sequence[ProviderAdjustment], positions: Sequence[int] = ()
) -> list[Draft]:
    """One posting per PLB adjustment (positive: withheld from the payment); ``positions``: each one's PLB
    segment position within the set."""
    drafts = []
    for ordinal, adjustment in enumerate(adjustments, start=1):
        draft = Draft(Source.PROVIDER_ADJUSTMENT)
        to = _INTEREST if adjustment.reason == INTEREST_REASON else _PROVIDER_ADJUSTMENTS
        at = positions[ordinal - 1] if ordinal <= len(positions) else None
        draft.add(
            to,
            _PAYMENTS,
            adjustment.amount,
            reason=adjustment.reason,
            segment="PLB",
            position=ordinal,
            index=at,
        )
        if draft.entries:
            drafts.append(draft)
    return drafts
