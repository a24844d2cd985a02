"""All SQL of claims: building one (idempotent per encounter and responsibility), transitions with their
event in ONE statement, listing, batches and X12 control numbers, and the billing queue's reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import ColumnElement, Table, and_, func, insert, literal, not_, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rcm.claims.models import (
    BatchStatus,
    Claim,
    ClaimAdjudication,
    ClaimEvent,
    ClaimLine,
    SubmissionBatch,
    X12ControlCounter,
    X12ControlNumber,
)
from rcm.claims.states import Cause, ClaimState
from rcm.kit.pagination import after_key
from rcm.kit.repository import TenantScopedRepository
from rcm.payers.models import Payer
from rcm.webhooks.models import EventType
from rcm.webhooks.outbox import OutboxRepository
from rcm.workqueue.models import BillingReason, ItemEventType, ItemStatus, QueueKind, WorkItem
from rcm.workqueue.repository import WorkItemRepository
from rcm.x12.remittance_model import REVERSAL

_CLAIM = cast(Table, Claim.__table__)
_EVENT = cast(Table, ClaimEvent.__table__)
_COUNTER = cast(Table, X12ControlCounter.__table__)
_NUMBER = cast(Table, X12ControlNumber.__table__)
_ITEM = cast(Table, WorkItem.__table__)
MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is nine digits

# ``transition`` for many claims at once, in ONE constant statement (built once, compiled once): each step
# (claim, expected state, new state, reason, payer claim control number) one element of the JSON array
# ``steps``; a claim no longer in its expected state is left alone and not returned. At most one step per
# claim per statement (an UPDATE changes a row once).
_TRANSITION_MANY = text(
    "WITH step AS (SELECT * FROM json_to_recordset(CAST(:steps AS json))"
    " AS s(claim_id uuid, expected text, target text, reason text, icn text)),"
    " changed AS (UPDATE rcm.claim AS c SET state = step.target, state_changed_at = clock_timestamp(),"
    " updated_at = clock_timestamp(),"
    " payer_claim_control_number = coalesce(step.icn, c.payer_claim_control_number)"
    " FROM step WHERE c.tenant_id = :tenant_id AND c.id = step.claim_id AND c.state = step.expected"
    " RETURNING c.tenant_id, c.id, c.encounter_id, c.frequency, c.state, c.state_changed_at, c.updated_at,"
    " c.payer_claim_control_number, step.expected, step.reason, step.icn),"
    " logged AS (INSERT INTO rcm.claim_event (tenant_id, id, created_at, claim_id, from_state, to_state,"
    " cause, actor, reason, payer_claim_control_number, x12_file_id)"
    " SELECT tenant_id, gen_random_uuid(), state_changed_at, id, expected, state, CAST(:cause AS text),"
    " CAST(:actor AS text), reason, icn, CAST(:x12_file_id AS uuid) FROM changed)"
    " SELECT id, encounter_id, frequency, state, state_changed_at, updated_at, payer_claim_control_number,"
    " expected FROM changed"
)
_STEPS = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Step:
    """One claim's move for ``ClaimRepository.transition_many``."""

    claim_id: uuid.UUID
    expected: ClaimState
    to: ClaimState
    reason: str | None = None
    payer_claim_control_number: str | None = None


@dataclass(frozen=True, slots=True)
class Moved:
    """A claim as a step of ``transition_many`` left it."""

    state: ClaimState
    state_changed_at: datetime
    updated_at: datetime
    payer_claim_control_number: str | None


def _status_data(
    claim: Any, from_state: str | None, to_state: str, cause: Cause
) -> dict[str, str | int | None]:
    """A claim's state change as its webhook says it (ids and states only: no PHI)."""
    return {
        "claim_id": str(claim.id),
        "encounter_id": str(claim.encounter_id),
        "frequency": claim.frequency,
        "from_state": from_state,
        "to_state": to_state,
        "cause": cause.value,
    }


class ControlNumbersExhausted(Exception):
    """A sender id has used every interchange control number: never wrap around and reuse one."""


class ClaimRepository(TenantScopedRepository[Claim]):
    model = Claim

    async def insert_new(self, claim: Claim, lines: Sequence[ClaimLine]) -> bool:
        """INSERT the claim unless the encounter already has an original for that responsibility (the
        partial unique index ``uq_claim_original``); its lines only when it was inserted."""
        claim.tenant_id = self.context.tenant_id
        values = {c.key: getattr(claim, c.key) for c in _CLAIM.columns if getattr(claim, c.key) is not None}
        stmt = (
            pg_insert(_CLAIM)
            .values(values)
            .on_conflict_do_nothing(
                index_elements=[_CLAIM.c.tenant_id, _CLAIM.c.encounter_id, _CLAIM.c.responsibility],
                index_where=text(
                    "frequency = 1"
                ),  # uq_claim_original (a literal: a bound value cannot name it)
            )
            .returning(_CLAIM.c.id)
        )
        if claim.frequency != 1:
            stmt = pg_insert(_CLAIM).values(values).returning(_CLAIM.c.id)
        inserted = (await self._execute(stmt)).first()
        if inserted is None:
            return False
        if lines:
            await self.insert(*lines)
        return True

    async def original_of(self, encounter_id: uuid.UUID, responsibility: str) -> Claim | None:
        stmt = self.base_statement().where(
            Claim.encounter_id == encounter_id, Claim.responsibility == responsibility, Claim.frequency == 1
        )
        return await self._first(stmt)

    async def first_original(self, encounter_id: uuid.UUID) -> uuid.UUID | None:
        """The encounter's first original claim (the one its clean scrub built), if any."""
        stmt = (
            select(Claim.id)
            .where(
                self.tenant_filter(Claim.tenant_id), Claim.encounter_id == encounter_id, Claim.frequency == 1
            )
            .order_by(Claim.created_at, Claim.id)
            .limit(1)
        )
        return (await self._execute(stmt)).scalar()

    async def transition(
        self,
        claim_id: uuid.UUID,
        *,
        expected: ClaimState,
        to: ClaimState,
        cause: Cause,
        actor: str | None,
        reason: str | None = None,
        payer_claim_control_number: str | None = None,
        closed_reason: str | None = None,
        unbatch: bool = False,
        x12_file_id: uuid.UUID | None = None,
    ) -> Claim | None:
        """Move the claim from ``expected`` to ``to`` and log the event, in ONE statement; None when the
        claim is no longer in ``expected`` (someone moved it first: the caller answers 409)."""
        new: dict[str, Any] = {
            "state": to.value,
            "state_changed_at": func.clock_timestamp(),
            "updated_at": func.clock_timestamp(),
        }
        if payer_claim_control_number is not None:
            new["payer_claim_control_number"] = payer_claim_control_number
        if closed_reason is not None:
            new["closed_reason"] = closed_reason
        if unbatch:  # a resubmitted claim leaves the batch that carried it, for the next one
            new["submission_batch_id"] = None
        changed = (
            update(_CLAIM)
            .where(
                self.tenant_filter(_CLAIM.c.tenant_id),
                _CLAIM.c.id == claim_id,
                _CLAIM.c.state == expected.value,
            )
            .values(**new)
            .returning(*_CLAIM.c)
            .cte("changed")
        )
        logged = insert(_EVENT).from_select(
            [
                "tenant_id",
                "id",
                "created_at",
                "claim_id",
                "from_state",
                "to_state",
                "cause",
                "actor",
                "reason",
                "payer_claim_control_number",
                "x12_file_id",
            ],
            select(
                changed.c.tenant_id,
                func.gen_random_uuid(),
                changed.c.state_changed_at,
                changed.c.id,
                literal(expected.value),
                changed.c.state,
                literal(cause.value),
                literal(actor, _EVENT.c.actor.type),
                literal(reason, _EVENT.c.reason.type),
                literal(payer_claim_control_number, _EVENT.c.payer_claim_control_number.type),
                literal(x12_file_id, _EVENT.c.x12_file_id.type),
            ),
        )
        stmt = (
            select(Claim)
            .from_statement(select(changed).add_cte(logged.cte("logged")))
            .execution_options(populate_existing=True)
        )
        claim: Claim | None = (await self._execute(stmt)).scalars().first()
        if claim is not None:
            await self._state_changed(claim, from_state=expected, cause=cause)
        return claim

    async def transition_many(
        self, steps: Sequence[Step], *, cause: Cause, actor: str | None, x12_file_id: uuid.UUID | None = None
    ) -> dict[uuid.UUID, Moved]:
        """``transition`` of each step (one per claim), its event and webhook as ``transition`` writes them,
        in two statements whatever their number: the claims moved and their events, then the webhooks.
        Returns the claims moved; a claim no longer in its step's ``expected`` state is not."""
        if not steps:
            return {}
        if len({step.claim_id for step in steps}) != len(steps):
            raise ValueError("one step per claim per statement")
        given = [
            {
                "claim_id": str(step.claim_id),
                "expected": step.expected.value,
                "target": step.to.value,
                "reason": step.reason,
                "icn": step.payer_claim_control_number,
            }
            for step in steps
        ]
        tenant_id = self.context.tenant_id
        params = {
            "steps": _STEPS.encode(given).decode(),
            "tenant_id": tenant_id,
            "cause": cause.value,
            "actor": actor,
            "x12_file_id": x12_file_id,
        }
        rows = (await self._execute(_TRANSITION_MANY, params)).all()
        moved: dict[uuid.UUID, Moved] = {}
        events = []
        for row in rows:
            state = ClaimState(row.state)
            moved[row.id] = Moved(state, row.state_changed_at, row.updated_at, row.payer_claim_control_number)
            events.append((row.state_changed_at, _status_data(row, row.expected, state.value, cause)))
        await OutboxRepository(self.session, self.context).emit_many(
            tenant_id, EventType.CLAIM_STATUS_CHANGED, events
        )
        return moved

    async def _state_changed(self, claim: Claim, *, from_state: ClaimState | None, cause: Cause) -> None:
        """The practice's webhooks about it, in this transaction (ids and states only: no PHI)."""
        await OutboxRepository(self.session, self.context).emit(
            claim.tenant_id,
            EventType.CLAIM_STATUS_CHANGED,
            at=claim.state_changed_at,
            data=_status_data(
                claim, from_state.value if from_state is not None else None, claim.state.value, cause
            ),
        )

    async def log_created(self, claim: Claim, *, cause: Cause, actor: str | None, reason: str | None) -> None:
        """The first event of a claim (no from-state)."""
        await self.insert(
            ClaimEvent(
                id=uuid.uuid4(),
                created_at=claim.created_at,
                claim_id=claim.id,
                from_state=None,
                to_state=claim.state,
                cause=cause,
                actor=actor,
                reason=reason,
            )
        )
        await self._state_changed(claim, from_state=None, cause=cause)

    async def events(self, claim_id: uuid.UUID) -> list[ClaimEvent]:
        stmt = self.statement_for(ClaimEvent).where(ClaimEvent.claim_id == claim_id)
        return await self._all(stmt.order_by(ClaimEvent.created_at, ClaimEvent.id))

    async def lines(self, claim_id: uuid.UUID) -> list[ClaimLine]:
        stmt = self.statement_for(ClaimLine).where(ClaimLine.claim_id == claim_id)
        return await self._all(stmt.order_by(ClaimLine.line_number))

    async def lines_of(self, claim_ids: Sequence[uuid.UUID]) -> list[ClaimLine]:
        stmt = self.statement_for(ClaimLine).where(ClaimLine.claim_id.in_(list(claim_ids)))
        return await self._all(stmt.order_by(ClaimLine.claim_id, ClaimLine.line_number))

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        state: ClaimState | None,
        encounter_id: uuid.UUID | None,
    ) -> list[Claim]:
        """Keyset page in (created_at, id) order (``ix_claim_created``, ``ix_claim_state`` with a state)."""
        stmt = self.base_statement()
        if state is not None:
            stmt = stmt.where(Claim.state == state)
        if encounter_id is not None:
            stmt = stmt.where(Claim.encounter_id == encounter_id)
        if after is not None:
            stmt = stmt.where(after_key(Claim.created_at, Claim.id, after))
        return await self._all(stmt.order_by(Claim.created_at, Claim.id).limit(limit))

    async def due_for_follow_up(self, *, limit: int, electronic: bool) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(practice, claim) of claims with the payer and no answer for longer than the payer's
        ``status_inquiry_days`` (submitted or accepted since then), and no live billing item about them;
        of payers with an electronic status service (``electronic``: the 276 job asks them) or without one
        (a person follows up)."""
        asks = and_(Payer.status_connector.is_not(None), Payer.status_endpoint.is_not(None))
        live = (
            select(_ITEM.c.id)
            .where(
                _ITEM.c.tenant_id == Claim.tenant_id,
                _ITEM.c.kind == QueueKind.BILLING,
                _ITEM.c.subject_id == Claim.id,
                _ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED, ItemStatus.WAITING]),
            )
            .exists()
        )
        stmt = (
            select(Claim.tenant_id, Claim.id)
            .join(Payer, Payer.id == Claim.payer_id)
            .where(
                self.tenant_filter(Claim.tenant_id),
                Claim.state.in_([ClaimState.SUBMITTED, ClaimState.ACCEPTED]),
                Claim.state_changed_at < func.now() - func.make_interval(0, 0, 0, Payer.status_inquiry_days),
                asks if electronic else not_(asks),
                ~live,
            )
            .order_by(Claim.state_changed_at)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self._rows(stmt)]

    async def lock(self, claim_id: uuid.UUID) -> Claim | None:
        """The claim, locked until commit (two actions on one claim queue up instead of racing)."""
        stmt = self.for_update(self.base_statement().where(Claim.id == claim_id))
        return await self._first(stmt.execution_options(populate_existing=True))

    # Batches -------------------------------------------------------------------------------------------

    async def unbatched_ready(self, *, limit: int) -> list[Claim]:
        """Ready claims in no batch, oldest first, locked (SKIP LOCKED: two batchers never take one claim).

        A next payer's claim waits while its prior payer's latest kept adjudication is a reversal (CLP02 22)
        whose correction has not come: its 837 would have no 2320/2430 to report. It goes in the first batch
        after the correction (which its 2320 then reports)."""
        prior_latest = (
            select(ClaimAdjudication.claim_status)
            .where(
                ClaimAdjudication.tenant_id == Claim.tenant_id,
                ClaimAdjudication.claim_id == Claim.primary_claim_id,
            )
            .order_by(ClaimAdjudication.version.desc())
            .limit(1)
            .scalar_subquery()
        )
        stmt = (
            self.base_statement()
            .where(Claim.state == ClaimState.READY, Claim.submission_batch_id.is_(None))
            .where(or_(Claim.primary_claim_id.is_(None), func.coalesce(prior_latest, "") != REVERSAL))
            .order_by(Claim.tenant_id, Claim.payer_id, Claim.claim_type, Claim.created_at, Claim.id)
            .limit(limit)
        )
        return await self._all(self.for_update(stmt, skip_locked=True))

    async def attach(self, batch: SubmissionBatch, claim_ids: Sequence[uuid.UUID]) -> None:
        await self.insert(batch)
        await self._execute(
            update(_CLAIM)
            .where(
                _CLAIM.c.tenant_id == batch.tenant_id,
                _CLAIM.c.id.in_(list(claim_ids)),
                _CLAIM.c.submission_batch_id.is_(None),
            )
            .values(submission_batch_id=batch.id, updated_at=func.clock_timestamp())
        )

    async def batch_claims(self, batch_id: uuid.UUID) -> list[Claim]:
        stmt = self.base_statement().where(Claim.submission_batch_id == batch_id)
        return await self._all(stmt.order_by(Claim.created_at, Claim.id))

    async def batch(self, batch_id: uuid.UUID) -> SubmissionBatch | None:
        return await self._first(self.statement_for(SubmissionBatch).where(SubmissionBatch.id == batch_id))

    async def lock_batch(self, batch_id: uuid.UUID) -> SubmissionBatch | None:
        """The batch, locked until commit: two renders of one batch queue up, the second finds the first's
        file instead of writing other bytes."""
        stmt = self.for_update(self.statement_for(SubmissionBatch).where(SubmissionBatch.id == batch_id))
        return await self._first(stmt.execution_options(populate_existing=True))

    async def batches_page(
        self, *, limit: int, after: tuple[datetime, uuid.UUID] | None, status: BatchStatus | None
    ) -> list[SubmissionBatch]:
        """Keyset page of the practice's batches in (created_at, id) order."""
        stmt = self.statement_for(SubmissionBatch)
        if status is not None:
            stmt = stmt.where(SubmissionBatch.status == status)
        if after is not None:
            stmt = stmt.where(after_key(SubmissionBatch.created_at, SubmissionBatch.id, after))
        return await self._all(stmt.order_by(SubmissionBatch.created_at, SubmissionBatch.id).limit(limit))

    async def allocate_control_number(self, sender_id: str) -> int:
        """The next interchange control number of ``sender_id``: the counter row moves under its row lock
        (concurrent batchers queue on it, never share a number) and the number is recorded in the ledger,
        whose primary key refuses a reuse. One statement."""
        bumped = (
            pg_insert(_COUNTER)
            .values(sender_id=sender_id, last_number=1, updated_at=func.clock_timestamp())
            .on_conflict_do_update(
                index_elements=[_COUNTER.c.sender_id],
                set_={"last_number": _COUNTER.c.last_number + 1, "updated_at": func.clock_timestamp()},
                where=_COUNTER.c.last_number < MAX_CONTROL_NUMBER,
            )
            .returning(_COUNTER.c.sender_id, _COUNTER.c.last_number)
            .cte("bumped")
        )
        recorded = (
            insert(_NUMBER)
            .from_select(
                ["sender_id", "control_number", "allocated_at"],
                select(bumped.c.sender_id, bumped.c.last_number, func.clock_timestamp()),
            )
            .returning(_NUMBER.c.control_number)
        )
        number = (await self._execute(recorded.add_cte(bumped))).scalar()
        if number is None:
            raise ControlNumbersExhausted(sender_id)
        return int(number)

    async def mark_batch(
        self, batch_id: uuid.UUID, *, status: str, receipt_reference: str | None = None
    ) -> SubmissionBatch | None:
        """Move a batch not yet sent (pending, or sending: its connector call returned) to ``status``."""
        table = cast(Table, SubmissionBatch.__table__)
        stmt = (
            update(table)
            .where(
                self.tenant_filter(table.c.tenant_id),
                table.c.id == batch_id,
                table.c.status.in_(["pending", "sending"]),
            )
            .values(
                status=status,
                sent_at=func.clock_timestamp() if status == "sent" else None,
                receipt_reference=receipt_reference,
                last_error=None,
                updated_at=func.clock_timestamp(),
            )
            .returning(table.c.id)
        )
        if (await self._execute(stmt)).first() is None:
            return None
        return await self.batch(batch_id)


class BillingQueueRepository(WorkItemRepository):
    """Billing-queue items: the one live item about a subject, and the supervisors' depth per reason."""

    async def live_about(self, subject_id: uuid.UUID) -> WorkItem | None:
        stmt = self.base_statement().where(
            WorkItem.kind == QueueKind.BILLING,
            WorkItem.subject_id == subject_id,
            WorkItem.status.in_([ItemStatus.OPEN, ItemStatus.LEASED, ItemStatus.WAITING]),
        )
        return await self._first(stmt)

    async def depth_by_reason(self) -> list[Any]:
        """Per practice and reason: live items (open, leased, waiting), overdue, and the oldest one."""
        stmt = (
            select(
                _ITEM.c.tenant_id,
                _ITEM.c.reason,
                func.count().label("live"),
                func.count().filter(_ITEM.c.due_at < func.now()).label("overdue"),
                func.min(_ITEM.c.created_at).label("oldest"),
            )
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.kind == QueueKind.BILLING,
                _ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED, ItemStatus.WAITING]),
            )
            .group_by(_ITEM.c.tenant_id, _ITEM.c.reason)
            .order_by(_ITEM.c.tenant_id, _ITEM.c.reason)
        )
        return await self._rows(stmt)

    async def complete_about(self, subject_id: uuid.UUID, *, actor: str) -> list[WorkItem]:
        """Resolve the live billing items about a subject (its problem was worked another way)."""
        return await self.complete_all_about([subject_id], actor=actor)

    async def complete_all_about(
        self, subject_ids: Sequence[uuid.UUID], *, actor: str, reason: BillingReason | None = None
    ) -> list[WorkItem]:
        """Resolve the live billing items (of ``reason``, when given) about any of the subjects: one
        statement, with their events."""
        only = [] if reason is None else [_ITEM.c.reason == reason]
        changed = (
            update(_ITEM)
            .where(
                self.tenant_filter(_ITEM.c.tenant_id),
                _ITEM.c.kind == QueueKind.BILLING,
                _ITEM.c.subject_id.in_(list(subject_ids)),
                and_(_ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED, ItemStatus.WAITING])),
                *only,
            )
            .values(
                status=ItemStatus.DONE,
                leased_by=None,
                lease_expires_at=None,
                updated_at=func.clock_timestamp(),
            )
            .returning(*_ITEM.c)
        )
        return await self._run(changed, ItemEventType.COMPLETED, actor)


class ResponseMatchRepository(TenantScopedRepository[Claim]):
    """Matching what a payer answered (999, 277CA, 835) to the practice's batches and claims: every read is
    tenant-filtered, so another practice's claim is never found, let alone moved."""

    model = Claim

    async def acknowledged_batches(self, group_control_number: int) -> list[SubmissionBatch]:
        """The practice's batches sent under that GS06 (one per sender id: the number is the ISA13's)."""
        stmt = (
            self.statement_for(SubmissionBatch)
            .where(SubmissionBatch.group_control_number == group_control_number)
            .order_by(SubmissionBatch.created_at, SubmissionBatch.id)
        )
        return await self._all(stmt)

    async def locked_in_batch(self, batch_id: uuid.UUID) -> list[Claim]:
        stmt = self.base_statement().where(Claim.submission_batch_id == batch_id).order_by(Claim.id)
        return await self._all(self.for_update(stmt).execution_options(populate_existing=True))

    async def locked_by_numbers(
        self, patient_control_numbers: Sequence[str], payer_claim_control_numbers: Sequence[str] = ()
    ) -> list[Claim]:
        """Claims whose CLM01 (or, failing that, payer claim control number) is among those given, locked
        in id order (two files naming the same claims queue up instead of deadlocking). One statement."""
        match: ColumnElement[bool] = Claim.patient_control_number.in_(list(patient_control_numbers))
        if payer_claim_control_numbers:
            match = or_(match, Claim.payer_claim_control_number.in_(list(payer_claim_control_numbers)))
        stmt = self.base_statement().where(match).order_by(Claim.id)
        return await self._all(self.for_update(stmt).execution_options(populate_existing=True))

    async def with_live_items(self, claim_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Those of the claims that already have a live billing-queue item (one statement)."""
        stmt = select(_ITEM.c.subject_id).where(
            self.tenant_filter(_ITEM.c.tenant_id),
            _ITEM.c.kind == QueueKind.BILLING,
            _ITEM.c.subject_id.in_(list(claim_ids)),
            _ITEM.c.status.in_([ItemStatus.OPEN, ItemStatus.LEASED, ItemStatus.WAITING]),
        )
        return set((await self._execute(stmt)).scalars())
