"""An 835's adjudication applied to claim states and posted to the ledger (``rcm.ledger``), in the caller's
transaction, one transaction set (one payment) at a time: the set is recorded once (a repeat of its TRN02,
payer and BPR02 is refused and counted as a duplicate), held whole with the reason when it does not balance
(BPR02 = Σ CLP04 - Σ PLB, and CLP03 - CLP04 = Σ CAS per claim: no claim moved, nothing posted), else per CLP,
the claim found by CLP01 (our CLM01), else by CLP07 (the payer's claim control number), else by patient +
date of service + billed amount (``patient_match``: a unique match only, else unmatched with the reason),
moved to ``paid``, ``partially_paid`` or ``denied`` with the payer's claim control number and an event whose
reason names CLP02 and the adjustment group/reason codes (``CO-45 PR-2``).

CLP02 1-3 and 19-21 (processed, forwarded or not): ``paid`` when CLP04 covers CLP03, ``partially_paid`` when
it pays part, ``denied`` when it pays nothing. CLP02 4: ``denied``. CLP02 22 (a reversal of an earlier
payment) moves nothing on its own: the payer sends the corrected claim beside it (CLP02 1...), which moves the
claim from one adjudicated state to the other as the state machine allows; the reversal is counted, and
posted by the posting. CLP02 23 (not our claim) and 25 (predetermination) move nothing either.

A claim still ``submitted`` (its 277CA not applied yet, or never sent) is accepted first: the payer could only
adjudicate what it accepted. Each set is read whole (its balance decides before anything moves), its claims
matched in chunks; then every payment, adjustment and PLB of the set is posted. A claim moved to ``denied``
or ``partially_paid`` has its denials recorded (``rcm.denials.recording``: classified by CARC/RARC, a billing
item due at the appeal deadline), one moved to ``paid`` its open denials closed, chunk by chunk. Each
adjudicated claim is handed to ``secondary``: the next payer's claim is built (or a crossover noted) in the
same transaction.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import date

from rcm.claims.applying import Applying, Move
from rcm.claims.cob_reversal import primaries_reversed
from rcm.claims.models import Claim as OurClaim
from rcm.claims.patient_match import by_patient
from rcm.claims.repository import ResponseMatchRepository
from rcm.claims.secondary import after_adjudication, revised
from rcm.claims.states import ClaimState
from rcm.denials import recording as denials
from rcm.interchanges.models import X12File
from rcm.ledger import service as ledger
from rcm.ledger.models import RemittanceState
from rcm.x12 import X12Error, transactions
from rcm.x12.envelope import Transaction
from rcm.x12.remittance import RemittanceStream
from rcm.x12.remittance_model import REVERSAL, Claim, ClaimSource, Header, ProviderAdjustment

PROCESSED = frozenset({"1", "2", "3", "19", "20", "21"})
DENIED = "4"
# Claims matched per statement: an 835 of 10,000 claims is 20 round trips, not 10,000.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class ReadSet:
    """One 835 transaction set read whole (the unit of posting): its ST02, header, claims and PLB, and where
    each was read (segment positions within the set: each claim's ``ClaimSource``, each PLB adjustment's)."""

    control_number: str
    header: Header
    claims: list[Claim]
    adjustments: list[ProviderAdjustment]
    sources: list[ClaimSource] = field(default_factory=list)
    adjustment_positions: list[int] = field(default_factory=list)


def read_set(transaction: Transaction) -> ReadSet:
    """The set read whole (X12Error names where it is not an 835): its balance decides before anything
    moves, so it is read before anything is applied."""
    stream = RemittanceStream(transaction)
    claims = list(stream.claims())
    return ReadSet(
        transaction.header.control_number,
        stream.header,
        claims,
        stream.provider_adjustments,
        stream.sources,
        stream.provider_adjustment_positions,
    )


def adjudicated(claim: Claim) -> ClaimState | None:
    """The state CLP02/CLP03/CLP04 put the claim in; None when the CLP moves no state."""
    if claim.status == DENIED:
        return ClaimState.DENIED
    if claim.status not in PROCESSED:
        return None
    if claim.paid <= 0:
        return ClaimState.DENIED
    if claim.paid >= claim.charge:
        return ClaimState.PAID
    return ClaimState.PARTIALLY_PAID


def reason(claim: Claim) -> str:
    """``835 CLP02 1; CO-45 PR-2``: the claim status code and each adjustment group-reason, claim and
    lines, once each in file order (codes only: the amounts are the posting's)."""
    codes = dict.fromkeys(
        f"{a.group}-{a.reason}"
        for a in itertools.chain(claim.adjustments, *(line.adjustments for line in claim.lines))
    )
    return "; ".join([f"835 CLP02 {claim.status}", *codes])


async def apply_remittance(work: Applying, row: X12File, data: bytes) -> uuid.UUID | None:
    for transaction in transactions(data):
        if transaction.kind != "835":
            raise X12Error(f"a {transaction.kind} set in an 835 file", segment_id="ST")
        await apply_set(work, row.id, read_set(transaction))
    return None


async def apply_set(work: Applying, file_id: uuid.UUID | None, read: ReadSet) -> tuple[str, str | None]:
    """One transaction set (one payment), the unit of posting: recorded once (a repeat of its trace number,
    payer and amount is refused and changes nothing), held whole when it does not balance (no claim moved,
    nothing posted), else its claims moved and every payment, adjustment and PLB posted to the ledger.
    Returns the verdict (``posted``, ``held``, ``duplicate``) and the reason a set is held."""
    header, claims = read.header, read.claims
    work.traces[header.trace_number] = None  # TRN02: the check or EFT this 835 pays by
    received = await ledger.receive(
        work.scope,
        file_id=file_id,
        set_control_number=read.control_number,
        header=header,
        claims=claims,
        adjustments=read.adjustments,
    )
    if received is None:
        work.count("duplicates")
        return "duplicate", None
    if received.state is not RemittanceState.POSTED:
        work.count("held")
        work.count("held_cents", header.total_paid)
        return "held", received.held_reason
    await post_received(work, received, read)
    return "posted", None


async def post_received(work: Applying, received: ledger.Received, read: ReadSet) -> None:
    """A set recorded as postable (by ``apply_set``, or released by a reviewer after it was held): its claims
    matched and moved, every payment, adjustment and PLB posted, counted in ``work``."""
    header, claims = read.header, read.claims
    matched: list[OurClaim | None] = []
    for start in range(0, len(claims), CHUNK):
        chunk = claims[start : start + CHUNK]
        matched.extend(
            await _apply_chunk(
                work, chunk, remitted_on=header.payment_date, first=start + 1, set_control=read.control_number
            )
        )
    posted = await ledger.post_remittance(
        work.scope,
        received,
        claims,
        matched,
        read.adjustments,
        sources=read.sources,
        adjustment_positions=read.adjustment_positions,
    )
    work.count("posted")
    work.count("posted_cents", posted.claims_cents)
    work.count("unapplied_cents", posted.unapplied_cents)
    work.count("provider_adjustments_cents", posted.provider_adjustments_cents)


async def _apply_chunk(
    work: Applying, chunk: list[Claim], *, remitted_on: date, first: int = 1, set_control: str = ""
) -> list[OurClaim | None]:
    """Each CLP's claim (None when unmatched), moved where the payer's adjudication puts it (its denials
    recorded, and the next payer's claim built from it: ``secondary``)."""
    repo = work.scope.repo(ResponseMatchRepository)
    # By CLP01 first (its unique index), then by CLP07 only for the CLPs CLP01 did not find (no index: a
    # scan of the practice's claims, made only when some CLP needs it). Both locked in id order.
    found = await repo.locked_by_numbers([c.patient_control_number for c in chunk])
    by_pcn = {claim.patient_control_number: claim for claim in found}
    missing = [
        c.payer_claim_control_number
        for c in chunk
        if c.payer_claim_control_number and c.patient_control_number not in by_pcn
    ]
    if missing:
        more = {claim.id: claim for claim in [*found, *await repo.locked_by_numbers([], missing)]}
        found = [more[claim_id] for claim_id in sorted(more)]  # as one statement found them: in id order
    by_icn = {claim.payer_claim_control_number: claim for claim in found if claim.payer_claim_control_number}
    # Third, by patient + date of service + billed amount, for the CLPs neither number found (rare: one more
    # statement only when some CLP needs it).
    left = [
        (ordinal, c)
        for ordinal, c in enumerate(chunk, start=first)
        if c.patient_control_number not in by_pcn and c.payer_claim_control_number not in by_icn
    ]
    third = await by_patient(work.scope, left, set_control=set_control) if left else None
    matched: list[OurClaim | None] = []
    moves: list[Move] = []
    remitted: list[Claim] = []  # the CLP of each move
    adjudications: list[tuple[OurClaim, Claim]] = []
    reversed_claims: list[OurClaim] = []
    revisions: list[tuple[OurClaim, Claim]] = []  # reversals and adjudications, in the file's order
    for ordinal, paid in enumerate(chunk, start=first):
        claim: OurClaim | None = by_pcn.get(paid.patient_control_number) or by_icn.get(
            paid.payer_claim_control_number
        )
        if claim is None and third is not None:
            claim = third.found.get(ordinal)
        matched.append(claim)
        if claim is None:
            work.count("unmatched")
            if third is not None and ordinal in third.reasons:
                work.unmatched_reasons.append(third.reasons[ordinal])
            continue
        work.saw(claim)
        work.count("matched")
        if paid.status == REVERSAL:
            work.count("reversals")
            reversed_claims.append(claim)
            revisions.append((claim, paid))
            continue
        target = adjudicated(paid)
        if target is None:
            work.count("unchanged")
            continue
        # A claim still submitted is accepted first (``move_all`` plans from the state the chunk's earlier
        # moves leave it in: only a submitted claim can be accepted).
        moves.append(
            Move(
                claim,
                target,
                reason=reason(paid),
                payer_claim_control_number=paid.payer_claim_control_number or None,
                through=ClaimState.ACCEPTED,
            )
        )
        remitted.append(paid)
        adjudications.append((claim, paid))
        revisions.append((claim, paid))
    arrived = await work.move_all(moves)  # the chunk's moves: a few statements, whatever their number
    adjudicated_now = [
        denials.Denied(move.claim, paid)
        for move, paid, moved in zip(moves, remitted, arrived, strict=True)
        if moved
    ]
    items = await denials.record(work.scope, adjudicated_now, remitted_on=remitted_on, file_id=work.file_id)
    work.count("items", items)
    # A reversed primary's next payers' claims: their share given back, flagged for correction (before the
    # chunk's corrections may build or adjudicate anything).
    await primaries_reversed(work, reversed_claims)
    await after_adjudication(work, adjudications, adjudicated_on=remitted_on)  # the next payers' claims
    # Their kept adjudications superseded by a reversal, and the correction after it standing (2320/2430).
    await revised(work, revisions, adjudicated_on=remitted_on)
    return matched
