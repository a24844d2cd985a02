"""Secondary and tertiary claims (coordination of benefits): built when the payer before them adjudicates,
and rendered with what it decided.

When an 835 adjudicates a primary claim (CLP02 1, 2, 3 or 4: paid, partially paid or denied) and leaves the
patient something to pay (CLP05, or else the PR adjustments), and the patient has a secondary coverage
active on the service date, ``after_adjudication`` builds the secondary claim in the same transaction: the
same lines and charges as the primary (a secondary is billed what the primary was), its payer the
coverage's, ``primary_claim_id`` naming the primary, and the primary's adjudication kept
(``ClaimAdjudication``: CLP, claim CAS, per line SVC03 and CAS, the remittance date, as the 835 being applied
says). It is ``ready`` when the practice is enrolled with its payer (else it waits in ``created`` with an
``enrollment`` billing item, as any claim does), and is batched and submitted like any other. A tertiary is
built the same way when the secondary's 835 comes. Idempotent: one original claim per encounter and
responsibility (``uq_claim_original``), so the same 835 applied again (or resent) builds nothing more.

On the ledger, the new claim posts no charges (the primary's stand): in the same transaction the patient's
share the 835 posted on the primary (its PR adjustments, what CLP05 says) moves off the patient's
receivable onto the new claim's insurance receivable (``coordination_of_benefits``), and the next payer's 835
clears it (its CARC 23 adjustments, the prior payer's part, are not posted again); a void or replacement of
the new claim gives it back (``coordination_reversed``), a replacement taking it over again.

A crossover (CLP02 19, 20, 21: processed as primary/secondary/tertiary AND forwarded by the payer to the
next payer) builds nothing: the next payer already has the claim. The primary records an event saying so.

``prior_payers`` gives the renderer each claim's payers before it: 2320 (SBR with that payer's
responsibility, claim CAS, AMT*D paid, AMT*EAF patient liability, OI), 2330A (that coverage's insured,
opened and audited as the claim's own parties are), 2330B (NM1*PR, DTP*573, REF*F8) and per line 2430 (SVD,
CAS, DTP*573). Lines are detailed only when the 835 named every line of the claim back (REF*6R) and their
payments add up to the claim's; otherwise the lines' adjustments are carried at the claim level, so the claim
still balances.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from rcm.audit.events import Action
from rcm.claims.applying import Applying
from rcm.claims.building import CLAIM, make_ready, new_claim, snapshot
from rcm.claims.models import Claim, ClaimAdjudication, ClaimEvent, ClaimLine
from rcm.claims.parties import Parties, claim_parties
from rcm.claims.repository import ClaimRepository
from rcm.claims.secondary_repository import ClaimAdjudicationRepository
from rcm.claims.states import ADJUDICATED, Cause, ClaimState, Frequency, Responsibility
from rcm.ledger import service as ledger
from rcm.patients.models import Coverage
from rcm.payers.repository import directory_payers
from rcm.tenancy.scope import TenantScope
from rcm.workqueue.models import BillingReason, SubjectType
from rcm.workqueue.repository import WorkItemRepository
from rcm.x12 import claims as x12
from rcm.x12 import remittance_model as remit

CROSSOVER = frozenset({"19", "20", "21"})  # processed, and forwarded to the next payer by this one
BILLED = frozenset(
    {"1", "2", "3", "4"}
)  # processed (or denied), not forwarded: the next payer is ours to bill
NEXT = {Responsibility.PRIMARY: Responsibility.SECONDARY, Responsibility.SECONDARY: Responsibility.TERTIARY}
SBR01 = {Responsibility.PRIMARY: "P", Responsibility.SECONDARY: "S", Responsibility.TERTIARY: "T"}
CROSSOVER_REASON = "835 CLP02 {status}: processed and forwarded by the payer to the next payer (crossover)"


def patient_responsibility(paid: remit.Claim) -> int:
    """What the payer left the patient: CLP05 when sent, else the PR adjustments of the claim and lines."""
    if paid.patient_responsibility is not None:
        return paid.patient_responsibility
    every = [*paid.adjustments, *(a for line in paid.lines for a in line.adjustments)]
    return sum(a.amount for a in every if a.group == "PR")


async def after_adjudication(
    work: Applying, adjudications: Sequence[tuple[Claim, remit.Claim]], *, adjudicated_on: date
) -> None:
    """The 835's CLPs were applied to their claims (one chunk of the set): build each next payer's claim, or
    note a crossover. Three reads for the chunk (the claims already followed, the patients' coverages), then
    one build per claim that needs it."""
    candidates: list[tuple[Claim, remit.Claim, Responsibility]] = []
    for claim, paid in adjudications:
        following = NEXT.get(claim.responsibility)
        if paid.status in CROSSOVER:
            await _crossover(work, claim, paid)
        elif (
            paid.status in BILLED
            and following is not None
            and claim.state in ADJUDICATED
            and patient_responsibility(paid) > 0
        ):
            candidates.append((claim, paid, following))
    if not candidates:
        return
    repo = work.scope.repo(ClaimAdjudicationRepository)
    followed = await repo.followed([claim.id for claim, _, _ in candidates])
    candidates = [c for c in candidates if c[0].id not in followed]
    coverages = await repo.coverages_of({claim.patient_id for claim, _, _ in candidates})
    for claim, paid, following in candidates:
        coverage = next_coverage(coverages.get(claim.patient_id, []), claim, following)
        if coverage is not None:
            await _build(work, claim, paid, coverage, following, adjudicated_on=adjudicated_on)


def next_coverage(
    coverages: Sequence[Coverage], claim: Claim, responsibility: Responsibility
) -> Coverage | None:
    """The patient's coverage of that priority active on the claim's service date (the first entered)."""
    for coverage in coverages:
        if coverage.priority != responsibility.value:
            continue
        if coverage.start_date is not None and coverage.start_date > claim.service_date:
            continue
        if coverage.end_date is not None and coverage.end_date < claim.service_date:
            continue
        return coverage
    return None


async def _crossover(work: Applying, claim: Claim, paid: remit.Claim) -> None:
    """An event on the claim (its state unchanged) saying the payer forwarded it; once per claim."""
    claims = work.scope.repo(ClaimRepository)
    reason = CROSSOVER_REASON.format(status=paid.status)
    if any(event.reason == reason for event in await claims.events(claim.id)):
        return
    await claims.insert(
        ClaimEvent(
            id=uuid.uuid4(),
            created_at=datetime.now(UTC),
            claim_id=claim.id,
            from_state=claim.state,
            to_state=claim.state,
            cause=Cause.REMITTANCE,
            actor=None,
            reason=reason,
            payer_claim_control_number=paid.payer_claim_control_number or None,
            x12_file_id=work.file_id,
        )
    )
    work.count("crossovers")


async def _build(
    work: Applying,
    primary: Claim,
    paid: remit.Claim,
    coverage: Coverage,
    responsibility: Responsibility,
    *,
    adjudicated_on: date,
) -> None:
    scope = work.scope
    claims = scope.repo(ClaimRepository)
    now = datetime.now(UTC)
    lines = await claims.lines(primary.id)
    # The primary's encounter, codes, lines and charges: a secondary is billed what the primary was.
    claim, copies = new_claim(
        snapshot(primary, lines),
        payer_id=coverage.payer_id,
        coverage_id=coverage.id,
        responsibility=responsibility,
        frequency=Frequency.ORIGINAL,
        now=now,
    )
    claim.primary_claim_id = primary.id
    if not await claims.insert_new(claim, copies):
        return  # built already: this 835 (or another for the same claim) was applied before
    await scope.repo(ClaimAdjudicationRepository).keep(
        adjudication_of(primary, paid, lines, x12_file_id=work.file_id, adjudicated_on=adjudicated_on)
    )
    # The patient's share the primary's 835 left is now billed to this payer: off the patient, onto it.
    await ledger.take_over_patient_share(scope, primary, claim, paid)
    pcn = primary.patient_control_number
    reason = f"{responsibility.value} claim after the 835 of {pcn} (CLP02 {paid.status})"
    await claims.log_created(claim, cause=Cause.REMITTANCE, actor=None, reason=reason)
    claim = await make_ready(scope, claim, cause=Cause.REMITTANCE, now=now)
    work.count("next_payer_claims")
    scope.audit(
        "claim.create",
        Action.CREATE,
        resource_type=CLAIM,
        resource_ids=[claim.id, primary.id],
        patient_ids=[claim.patient_id],
        detail={
            "frequency": claim.frequency,
            "state": claim.state.value,
            "payer": claim.payer_id,
            "responsibility": responsibility.value,
        },
    )


async def revised(
    work: Applying, remitted: Sequence[tuple[Claim, remit.Claim]], *, adjudicated_on: date
) -> None:
    """The chunk's CLPs (reversals and adjudications, in the file's order) applied, and the next payers'
    claims built: each claim whose adjudication is kept (a next payer's claim was built from it) gets a new
    version when its payment is reversed (CLP02 22, superseding the standing one) and when an adjudication
    follows a reversal (the correction, standing from now on). The next payer's 837 (a replacement after the
    ``cob_correction``, or its first rendering when it was not sent yet) then reports the correction in 2320
    and 2430, never the reversed payment. One read for the chunk; a claim line read and an INSERT per version
    (rare: reversed claims that have a next payer's claim)."""
    wanted = [(claim, paid) for claim, paid in remitted if claim.responsibility in NEXT]
    if not wanted:
        return
    repo = work.scope.repo(ClaimAdjudicationRepository)
    latest = await repo.latest({claim.id for claim, _ in wanted})
    if not latest:
        return
    claims = work.scope.repo(ClaimRepository)
    for claim, paid in wanted:
        current = latest.get(claim.id)
        if current is None or (paid.status == remit.REVERSAL) == (current.claim_status == remit.REVERSAL):
            continue  # nothing kept, a reversal of nothing standing, or an adjudication no reversal preceded
        row = adjudication_of(
            claim, paid, await claims.lines(claim.id), x12_file_id=work.file_id, adjudicated_on=adjudicated_on
        )
        row.version = current.version + 1
        await repo.supersede(row)
        latest[claim.id] = row
        if paid.status != remit.REVERSAL:
            await _unsent_take_over(work, claim, paid)


async def _unsent_take_over(work: Applying, prior: Claim, correction: remit.Claim) -> None:
    """The correction of ``prior``'s reversed payment stands: each of its next payers' claims not sent yet (in
    no batch: nothing to replace, so no biller's replacement will take the share over) that gave its share
    back at the reversal takes over the share the correction leaves the patient, as ``_build`` does for a new
    one, and the ``cob_correction`` item the reversal opened on it is cancelled (done without a biller).
    Audited. A claim already sent waits for its replacement (``cob_correction``), which takes it over then."""
    scope = work.scope
    taken: list[Claim] = []
    cents = 0
    for claim in await scope.repo(ClaimAdjudicationRepository).next_claims([prior.id]):
        unsent = claim.submission_batch_id is None and claim.state in (ClaimState.CREATED, ClaimState.READY)
        amount = await ledger.take_over_corrected_share(scope, prior, claim, correction) if unsent else 0
        if not amount:
            continue
        await scope.repo(WorkItemRepository).cancel_for_subject(
            SubjectType.CLAIM, claim.id, actor=scope.principal.subject, reason=BillingReason.COB_CORRECTION
        )
        work.count("cob_taken_over")
        taken.append(claim)
        cents += amount
    if taken:
        scope.audit(
            "claim.cob_taken_over",
            Action.UPDATE,
            resource_type=CLAIM,
            resource_ids=[c.id for c in taken],
            patient_ids=list({c.patient_id for c in taken}),
            detail={"claims": len(taken), "taken_cents": cents},
        )


def _adjustments(adjustments: Sequence[remit.Adjustment]) -> list[dict[str, Any]]:
    """CAS triples grouped by group code (first seen first), so each group is one CAS segment."""
    order = list(dict.fromkeys(a.group for a in adjustments))
    ordered = sorted(adjustments, key=lambda a: order.index(a.group))
    return [
        {"group": a.group, "reason": a.reason, "amount": a.amount, "quantity": a.quantity} for a in ordered
    ]


def adjudication_of(
    claim: Claim,
    paid: remit.Claim,
    lines: Sequence[ClaimLine],
    *,
    x12_file_id: uuid.UUID | None,
    adjudicated_on: date,
) -> ClaimAdjudication:
    """The 835's CLP as kept for the next payer: each 835 line matched to ours by REF*6R (our line number),
    or by position when the payer sent no REF*6R."""
    numbers = [line.line_number for line in lines]
    kept_lines = []
    for position, line in enumerate(paid.lines):
        control = line.control_number
        number = int(control) if control and control.isdigit() else None
        if number is None and len(paid.lines) == len(numbers):
            number = numbers[position]
        if number is None or number not in numbers:
            continue
        kept_lines.append(
            {
                "line_number": number,
                "paid": line.paid,
                "procedure": line.code if line.qualifier == "HC" else None,
                "modifiers": list(line.modifiers),
                "units": line.units or "1",
                "adjustments": _adjustments(line.adjustments),
            }
        )
    return ClaimAdjudication(
        id=uuid.uuid4(),
        claim_id=claim.id,
        x12_file_id=x12_file_id,
        payer_id=claim.payer_id,
        claim_status=paid.status,
        payer_claim_control_number=paid.payer_claim_control_number or None,
        charge_cents=paid.charge,
        paid_cents=paid.paid,
        patient_responsibility_cents=paid.patient_responsibility,
        adjudicated_on=adjudicated_on,
        adjustments=_adjustments(paid.adjustments),
        lines=kept_lines,
    )


# --- rendering


def _cas(raw: Sequence[Mapping[str, Any]]) -> tuple[remit.Adjustment, ...]:
    return tuple(
        remit.Adjustment(group=a["group"], reason=a["reason"], amount=a["amount"], quantity=a.get("quantity"))
        for a in raw
    )


async def prior_payers(
    scope: TenantScope, parties: dict[uuid.UUID, Parties], claims: Sequence[tuple[Claim, Sequence[ClaimLine]]]
) -> dict[uuid.UUID, Parties]:
    """``parties`` with each secondary or tertiary claim's payers before it (2320/2330A/2330B, 2430): the
    chain of ``primary_claim_id``, their standing adjudications (a correction, not the payment it reversed;
    none while a reversal awaits its correction), their coverages' insureds (opened and audited by
    ``claim_parties``) and their payers' directory names and filing indicators."""
    chains: dict[uuid.UUID, list[Claim]] = {}
    pending: dict[uuid.UUID, uuid.UUID | None] = {
        claim.id: claim.primary_claim_id for claim, _ in claims if claim.primary_claim_id is not None
    }
    if not pending:
        return parties
    repo = scope.repo(ClaimRepository)
    known: dict[uuid.UUID, Claim] = {}
    for _ in range(len(NEXT)):  # a tertiary is two claims from its primary
        wanted = {prior for prior in pending.values() if prior is not None and prior not in known}
        known.update({row.id: row for row in await repo.many(wanted)})
        for claim_id, prior_id in list(pending.items()):
            if prior_id is None or prior_id not in known:
                continue
            prior = known[prior_id]
            chains.setdefault(claim_id, []).append(prior)
            pending[claim_id] = prior.primary_claim_id
    priors = list(known.values())
    adjudications = await scope.repo(ClaimAdjudicationRepository).standing([p.id for p in priors])
    insureds = await claim_parties(scope, priors)
    payers = await directory_payers(scope.session, {p.payer_id for p in priors})
    out = dict(parties)
    for claim, lines in claims:
        chain = sorted(chains.get(claim.id, []), key=lambda p: list(SBR01).index(p.responsibility))
        others: list[x12.OtherSubscriber] = []
        by_line: dict[int, list[x12.LineAdjudication]] = {line.line_number: [] for line in lines}
        for prior in chain:
            adjudication = adjudications.get(prior.id)
            insured = insureds[prior.id].subscriber
            if adjudication is None or insured is None:
                continue
            payer = payers.get(prior.payer_id)
            # 2430 only when the 835 named every line back and its line payments make the claim's (AMT*D).
            detailed = {row["line_number"] for row in adjudication.lines} >= set(by_line) and sum(
                row["paid"] for row in adjudication.lines if row["line_number"] in by_line
            ) == adjudication.paid_cents
            claim_cas = list(adjudication.adjustments)
            if detailed:
                for row in adjudication.lines:
                    if row["line_number"] in by_line:
                        by_line[row["line_number"]].append(
                            x12.LineAdjudication(
                                payer_id=prior.payer_id,
                                paid=row["paid"],
                                units=row["units"],
                                adjustments=_cas(row["adjustments"]),
                                adjudicated=adjudication.adjudicated_on,
                            )
                        )
            else:
                claim_cas += [a for row in adjudication.lines for a in row["adjustments"]]
                claim_cas = _adjustments(_cas(claim_cas))
            others.append(
                x12.OtherSubscriber(
                    payer=x12.Payer(name=payer.name if payer else prior.payer_id, payer_id=prior.payer_id),
                    member_id=insured.member_id,
                    name=insured.name,
                    address=insured.address,
                    responsibility=SBR01[prior.responsibility],
                    relationship=insureds[prior.id].relationship,
                    group_number=insured.group_number,
                    claim_filing_indicator=payer.claim_filing_indicator.value if payer else "CI",
                    adjustments=_cas(claim_cas),
                    paid=adjudication.paid_cents,
                    remaining_patient_liability=adjudication.patient_responsibility_cents,
                    adjudicated=adjudication.adjudicated_on,
                    payer_claim_control_number=adjudication.payer_claim_control_number,
                )
            )
        if others:
            out[claim.id] = dataclasses.replace(
                parties[claim.id],
                other_subscribers=tuple(others),
                line_adjudications={number: tuple(found) for number, found in by_line.items() if found},
            )
    return out
