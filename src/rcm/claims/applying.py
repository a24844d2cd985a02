"""What applying one payer response does to claims, shared by the 999/277CA (``acknowledgments``) and the 835
(``adjudication``): moving a claim along the state machine with an event naming the file, putting a rejected
claim in the billing queue, and counting what happened.

A move the machine has no edge for, or a claim already where the file would put it, is counted as
``unchanged``, never an error: files arrive late, twice (a payer resends) or out of order (an 835 before its
277CA), and one stale line must not refuse the whole file.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm.attributes import set_committed_value

from rcm.claims.building import BILLING_SLA
from rcm.claims.models import Claim
from rcm.claims.repository import BillingQueueRepository, ClaimRepository, ResponseMatchRepository, Step
from rcm.claims.states import Cause, ClaimState, allowed
from rcm.interchanges.models import FileStatus
from rcm.tenancy.scope import TenantScope
from rcm.workqueue import service as workqueue
from rcm.workqueue.models import BillingReason, QueueKind, SubjectType


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying a file did. ``already``: it had been applied (or refused) before; nothing changed."""

    file_id: uuid.UUID
    kind: str
    status: FileStatus
    already: bool = False
    accepted: int = 0
    rejected: int = 0
    paid: int = 0
    partially_paid: int = 0
    denied: int = 0
    reversals: int = 0  # 835 CLP02 22: recorded by posting, no state of their own
    unchanged: int = 0  # matched, but already there (or no such move from where the claim is)
    unmatched: int = 0  # not a claim (or batch) of this practice
    matched: int = 0  # 835 CLPs matched to a claim of the practice
    posted: int = 0  # 835 transaction sets posted to the ledger
    held: int = 0  # 835 transaction sets held whole (they do not balance)
    duplicates: int = 0  # 835 transaction sets refused: their trace number, payer and amount came before
    posted_cents: int = 0  # CLP04 posted to matched claims
    unapplied_cents: int = 0  # CLP04 of claims matching none of the practice's (posted as unapplied)
    provider_adjustments_cents: int = 0  # Σ PLB posted
    held_cents: int = 0  # BPR02 of the held sets
    next_payer_claims: int = 0  # 835: secondary (tertiary) claims built from it (``rcm.claims.secondary``)
    crossovers: int = 0  # 835 CLP02 19-21: forwarded by the payer to the next payer, nothing built
    cob_corrections: int = 0  # next payers' claims flagged: their primary's payment was reversed
    cob_taken_over: int = 0  # next payers' claims not sent yet that took over the correction's share
    items: int = 0  # billing-queue items opened
    batch_id: uuid.UUID | None = None
    # 835 CLPs left unmatched, each with the reason (the set, the CLP's ordinal, why: never the patient)
    unmatched_reasons: tuple[str, ...] = ()
    error: str | None = None  # why the file was refused: a segment and a position, never content


_COUNTED = {
    ClaimState.ACCEPTED: "accepted",
    ClaimState.REJECTED: "rejected",
    ClaimState.PAID: "paid",
    ClaimState.PARTIALLY_PAID: "partially_paid",
    ClaimState.DENIED: "denied",
}


@dataclass(frozen=True, slots=True)
class Move:
    """One ``Applying.move`` of ``Applying.move_all``: its arguments."""

    claim: Claim
    to: ClaimState
    reason: str | None
    payer_claim_control_number: str | None = None
    through: ClaimState | None = None


@dataclass(slots=True)
class _Planned:
    move: Move
    steps: list[tuple[int, Step]]  # (round, step)
    arrives: bool  # the move ends with its ``to`` step (else it is counted unchanged, as ``move`` does)


@dataclass
class Applying:
    """One file being applied in one practice: the moves, the items and the counts, for the ``Outcome``."""

    scope: TenantScope
    file_id: uuid.UUID
    cause: Cause
    counts: dict[str, int] = field(default_factory=dict)
    claims: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # claim -> patient, for the audit
    # What the file is about, for its links (``rcm.interchanges``): every claim it matched (moved or not),
    # the batches those claims (or a 999's groups) belong to, an 835's check/EFT trace numbers (TRN02).
    matched: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # claim -> patient
    batches: dict[uuid.UUID, None] = field(default_factory=dict)  # ordered set
    traces: dict[str, None] = field(default_factory=dict)
    unmatched_reasons: list[str] = field(default_factory=list)  # 835 CLPs no rule matched, and why

    def count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def saw(self, claim: Claim) -> None:
        """The file names ``claim`` (and so its batch), whatever it does to it."""
        self.matched[claim.id] = claim.patient_id
        if claim.submission_batch_id is not None:
            self.batches[claim.submission_batch_id] = None

    async def move(
        self,
        claim: Claim,
        to: ClaimState,
        *,
        reason: str | None,
        payer_claim_control_number: str | None = None,
        through: ClaimState | None = None,
    ) -> bool:
        """Move ``claim`` to ``to`` (first to ``through`` when it is still short of it: an 835 for a claim
        whose 277CA has not come implies the acceptance), the events naming the file; False if it stays."""
        icn = payer_claim_control_number
        if (
            through is not None
            and claim.state is not through
            and allowed(claim.state, through)
            and not await self._step(claim, through, reason=None, icn=icn)
        ):
            self.count("unchanged")
            return False
        if claim.state is to or not allowed(claim.state, to):
            self.count("unchanged")
            return False
        if not await self._step(claim, to, reason=reason, icn=payer_claim_control_number):
            self.count("unchanged")
            return False
        self.count(_COUNTED.get(to, "unchanged"))
        return True

    async def _step(self, claim: Claim, to: ClaimState, *, reason: str | None, icn: str | None) -> bool:
        moved = await self.scope.repo(ClaimRepository).transition(
            claim.id,
            expected=claim.state,
            to=to,
            cause=self.cause,
            actor=None,  # the payer moved it; the audit event names the job or person who applied the file
            reason=reason,
            payer_claim_control_number=icn,
            x12_file_id=self.file_id,
        )
        if moved is None:
            return False
        claim.state = moved.state
        self.claims[claim.id] = claim.patient_id
        return True

    async def move_all(self, moves: Sequence[Move]) -> list[bool]:
        """``move`` of each of ``moves`` in turn, with the same steps, events, webhooks, counts and claims
        (in the same order), but a few statements for them all rather than two per step. Returns, per move,
        what ``move`` returns: whether the claim arrived where the move sends it.

        The claims must be locked by this transaction (as the files' matching locks them), so a step planned
        from a claim's state applies: each claim's first steps go in one statement, its second steps in the
        next, and so on. Should a step find its claim elsewhere all the same, the claim's later steps in
        ``moves`` are not made and their moves count ``unchanged``.
        """
        now: dict[uuid.UUID, ClaimState] = {}  # each claim's state as the moves planned so far leave it
        rounds: dict[uuid.UUID, int] = {}  # each claim's steps planned so far
        planned: list[_Planned] = []
        for move in moves:
            claim = move.claim
            state = now.get(claim.id, claim.state)
            steps: list[tuple[int, Step]] = []
            icn = move.payer_claim_control_number
            through = move.through
            if through is not None and state is not through and allowed(state, through):
                steps.append(
                    (rounds.get(claim.id, 0) + len(steps), Step(claim.id, state, through, None, icn))
                )
                state = through
            arrives = state is not move.to and allowed(state, move.to)
            if arrives:
                steps.append(
                    (rounds.get(claim.id, 0) + len(steps), Step(claim.id, state, move.to, move.reason, icn))
                )
                state = move.to
            rounds[claim.id] = rounds.get(claim.id, 0) + len(steps)
            now[claim.id] = state
            planned.append(_Planned(move, steps, arrives))
        by_round: list[list[Step]] = [[] for _ in range(max(rounds.values(), default=0))]
        for plan in planned:
            for number, step in plan.steps:
                by_round[number].append(step)
        claims = {plan.move.claim.id: plan.move.claim for plan in planned}
        done: set[tuple[int, uuid.UUID]] = set()
        stopped: set[uuid.UUID] = set()  # a step of the claim did not apply: none after it is made
        repo = self.scope.repo(ClaimRepository)
        for number, batch in enumerate(by_round):
            moved = await repo.transition_many(
                [step for step in batch if step.claim_id not in stopped],
                cause=self.cause,
                actor=None,  # the payer moved them; the audit event names who applied the file
                x12_file_id=self.file_id,
            )
            for step in batch:
                found = moved.get(step.claim_id)
                if found is None:
                    stopped.add(step.claim_id)
                    continue
                done.add((number, step.claim_id))
                claim = claims[step.claim_id]
                # What the database now holds, as ``transition``'s refresh leaves it (nothing to flush).
                set_committed_value(claim, "state", found.state)
                set_committed_value(claim, "state_changed_at", found.state_changed_at)
                set_committed_value(claim, "updated_at", found.updated_at)
                set_committed_value(claim, "payer_claim_control_number", found.payer_claim_control_number)
        arrived: list[bool] = []
        for plan in planned:
            claim = plan.move.claim
            made = [(number, claim.id) in done for number, _ in plan.steps]
            if any(made):
                self.claims[claim.id] = claim.patient_id
            arrived.append(plan.arrives and all(made))
            self.count(_COUNTED.get(plan.move.to, "unchanged") if arrived[-1] else "unchanged")
        return arrived

    async def queue_rejections(self, claim_ids: list[uuid.UUID], *, now: datetime | None = None) -> None:
        """A billing-queue item (reason ``rejection``) per rejected claim that has no live item already (the
        claim's rejection event carries the payer's codes and their meaning). One statement for all."""
        if not claim_ids:
            return
        now = now or datetime.now(UTC)
        queue = self.scope.repo(BillingQueueRepository)
        priority, due_in = workqueue.sla_for(self.scope.manifest, QueueKind.BILLING, default=BILLING_SLA)
        # One live item per claim (uq_work_item_live_subject): a claim with one already (a follow-up) keeps
        # it, and the biller working it sees the rejection on the claim.
        live = await self.scope.repo(ResponseMatchRepository).with_live_items(claim_ids)
        items = []
        for claim_id in dict.fromkeys(claim_ids):
            if claim_id in live:
                continue
            items.append(
                workqueue.new_item(
                    kind=QueueKind.BILLING,
                    subject_type=SubjectType.CLAIM,
                    subject_id=claim_id,
                    due_at=now + due_in,
                    priority=priority,
                    created_at=now,
                    reason=BillingReason.REJECTION,
                )
            )
        if items:
            await queue.create(*items, actor=self.scope.principal.subject)
            self.count("items", len(items))

    def outcome(self, kind: str, *, batch_id: uuid.UUID | None = None) -> Outcome:
        n = self.counts.get
        return Outcome(
            file_id=self.file_id,
            kind=kind,
            status=FileStatus.PROCESSED,
            accepted=n("accepted", 0),
            rejected=n("rejected", 0),
            paid=n("paid", 0),
            partially_paid=n("partially_paid", 0),
            denied=n("denied", 0),
            reversals=n("reversals", 0),
            unchanged=n("unchanged", 0),
            unmatched=n("unmatched", 0),
            matched=n("matched", 0),
            posted=n("posted", 0),
            held=n("held", 0),
            duplicates=n("duplicates", 0),
            posted_cents=n("posted_cents", 0),
            unapplied_cents=n("unapplied_cents", 0),
            provider_adjustments_cents=n("provider_adjustments_cents", 0),
            held_cents=n("held_cents", 0),
            next_payer_claims=n("next_payer_claims", 0),
            crossovers=n("crossovers", 0),
            cob_corrections=n("cob_corrections", 0),
            cob_taken_over=n("cob_taken_over", 0),
            items=n("items", 0),
            batch_id=batch_id,
            unmatched_reasons=tuple(self.unmatched_reasons),
        )
