"""The ledger's statements: a remittance received once (the unique trace key decides), postings appended,
a claim's entries and standing charges read. Nothing here updates or deletes: the database refuses it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

import msgspec
from sqlalchemy import ARRAY, Table, Uuid, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rcm.claims.models import ClaimLine
from rcm.kit.db import DriverStatement
from rcm.kit.models import utcnow
from rcm.kit.repository import TenantScopedRepository
from rcm.ledger.lines import BilledLine
from rcm.ledger.models import Account, LedgerEntry, LedgerPosting, Remittance, RemittanceState, Source
from rcm.ledger.posting import Draft

_REMITTANCE = cast(Table, Remittance.__table__)
# Postings and their entries in ONE constant statement, whatever their number: the drafts as given
# (``posting.Draft``) as typed arrays, one element per posting, then one per entry with its posting's ordinal
# (the driver sends them binary: nothing to parse). Each posting's id is given to its entries, whose ids are
# its own time-ordered id's first 8 bytes (time and version) then 8 random bytes (variant kept): appended near
# each other in the primary key. An entry's remark codes (rare) travel as a JSON array, NULL for none. Each
# posting's balance, its posting and its claim are checked once for the whole statement
# (``ledger_entry_checked``); the ledger is only appended to.
_POST = text(
    "WITH draft AS MATERIALIZED (SELECT d.id, d.source, d.claim_id, d.ordinal"
    " FROM unnest(CAST(:ids AS uuid[]), CAST(:sources AS text[]), CAST(:claims AS uuid[]))"
    " WITH ORDINALITY AS d(id, source, claim_id, ordinal)),"
    " posting AS (INSERT INTO rcm.ledger_posting (tenant_id, id, created_at, source, claim_id, remittance_id,"
    " actor) SELECT CAST(:tenant_id AS uuid), id, CAST(:now AS timestamptz), source, claim_id,"
    " CAST(:remittance_id AS uuid), CAST(:actor AS text) FROM draft)"
    " INSERT INTO rcm.ledger_entry (tenant_id, id, created_at, posting_id, account, amount_cents, claim_id,"
    " line_number, adjustment_group, reason_code, remark_codes, segment, segment_position, segment_index)"
    " SELECT CAST(:tenant_id AS uuid), CAST(encode(overlay(uuid_send(gen_random_uuid()) PLACING"
    " substring(uuid_send(draft.id) FROM 1 FOR 8) FROM 1 FOR 8), 'hex') AS uuid), CAST(:now AS timestamptz),"
    " draft.id, e.account, e.amount, e.claim_id, e.line_number, e.grp, e.reason,"
    " CASE WHEN e.remarks IS NULL THEN CAST('{}' AS text[])"
    " ELSE ARRAY(SELECT json_array_elements_text(CAST(e.remarks AS json))) END,"
    " e.segment, e.position, e.idx"
    " FROM unnest(CAST(:entry_posting AS bigint[]), CAST(:accounts AS text[]), CAST(:amounts AS bigint[]),"
    " CAST(:entry_claims AS uuid[]), CAST(:lines AS smallint[]), CAST(:groups AS text[]),"
    " CAST(:reasons AS text[]), CAST(:remarks AS text[]), CAST(:segments AS text[]),"
    " CAST(:positions AS integer[]), CAST(:indexes AS integer[]))"
    " AS e(posting, account, amount, claim_id, line_number, grp, reason, remarks, segment, position, idx)"
    " JOIN draft ON draft.ordinal = e.posting"
)
_REMARKS = msgspec.json.Encoder()
# The lines of an 835's claims (thousands): the columns only, read by the driver (no ClaimLine instances, and
# no per-element processing of each line's modifiers array by SQLAlchemy), compiled once.
_BILLED_LINES = DriverStatement.compile(
    select(
        ClaimLine.claim_id,
        ClaimLine.line_number,
        ClaimLine.procedure_code,
        ClaimLine.modifiers,
        ClaimLine.service_date,
        ClaimLine.charge_cents,
    )
    .where(
        TenantScopedRepository.tenant_param_filter(ClaimLine.tenant_id),
        ClaimLine.claim_id == func.any(bindparam("claim_ids", type_=ARRAY(Uuid))),
    )
    .order_by(ClaimLine.claim_id, ClaimLine.line_number)
)
_ITS_POSTING = (LedgerPosting.tenant_id == LedgerEntry.tenant_id) & (
    LedgerPosting.id == LedgerEntry.posting_id
)


class LedgerRepository(TenantScopedRepository[LedgerEntry]):
    model = LedgerEntry

    async def receive(self, remittance: Remittance) -> bool:
        """INSERT the remittance unless one with its trace number, originator and amount is there already
        (``uq_remittance_trace``: a worker racing another waits for its commit, then finds it): False then."""
        remittance.tenant_id = self.context.tenant_id
        values = {c.key: getattr(remittance, c.key) for c in _REMITTANCE.columns}
        values["created_at"] = values["created_at"] or utcnow()
        stmt = (
            pg_insert(_REMITTANCE)
            .values(values)
            .on_conflict_do_nothing(constraint="uq_remittance_trace")
            .returning(_REMITTANCE.c.id)
        )
        return (await self._execute(stmt)).first() is not None

    async def post(
        self, drafts: Sequence[Draft], *, remittance_id: uuid.UUID | None = None, actor: str | None = None
    ) -> list[uuid.UUID]:
        """One posting per draft with entries (each sums to zero: checked here and by the database for the
        statement), all in one statement; returns the postings' ids (the drafts' own), in order."""
        given = [draft for draft in drafts if draft.entries]
        for draft in given:
            if draft.total:
                raise ValueError(f"a {draft.source} posting off by {draft.total} cents")
        if given:
            entries = [(ordinal, entry) for ordinal, draft in enumerate(given, 1) for entry in draft.entries]
            params = {
                "ids": [draft.id for draft in given],
                "sources": [draft.source.value for draft in given],
                "claims": [draft.claim_id for draft in given],
                "entry_posting": [ordinal for ordinal, _ in entries],
                "accounts": [e.account.value for _, e in entries],
                "amounts": [e.amount for _, e in entries],
                "entry_claims": [e.claim_id for _, e in entries],
                "lines": [e.line_number for _, e in entries],
                "groups": [e.group for _, e in entries],
                "reasons": [e.reason for _, e in entries],
                "remarks": [_REMARKS.encode(e.remarks).decode() if e.remarks else None for _, e in entries],
                "segments": [e.segment for _, e in entries],
                "positions": [e.position for _, e in entries],
                "indexes": [e.index for _, e in entries],
                "tenant_id": self.context.tenant_id,
                "now": utcnow(),
                "remittance_id": remittance_id,
                "actor": actor,
            }
            await self._execute(_POST, params)
        return [draft.id for draft in given]

    async def charged(self, claim_id: uuid.UUID) -> dict[int | None, int]:
        """The claim's charges standing, per line (what was credited to ``charges``, as a positive sum)."""
        stmt = (
            select(LedgerEntry.line_number, -func.sum(LedgerEntry.amount_cents))
            .where(
                self.tenant_filter(LedgerEntry.tenant_id),
                LedgerEntry.claim_id == claim_id,
                LedgerEntry.account == Account.CHARGES,
            )
            .group_by(LedgerEntry.line_number)
        )
        return {line: int(total) for line, total in await self._rows(stmt) if total}

    async def coordinated(self, claim_id: uuid.UUID) -> dict[uuid.UUID, int]:
        """What the claim still holds of each prior claim's patient share (its coordination postings, less
        their reversals), per prior claim, as positive sums."""
        mine = select(LedgerEntry.posting_id).where(
            self.tenant_filter(LedgerEntry.tenant_id), LedgerEntry.claim_id == claim_id
        )
        stmt = (
            select(LedgerEntry.claim_id, -func.sum(LedgerEntry.amount_cents))
            .join(LedgerPosting, _ITS_POSTING)
            .where(
                self.tenant_filter(LedgerEntry.tenant_id),
                LedgerEntry.posting_id.in_(mine),  # by ix_ledger_entry_claim_id, then the postings' index
                LedgerPosting.claim_id == claim_id,
                LedgerPosting.source.in_([Source.COORDINATION_OF_BENEFITS, Source.COORDINATION_REVERSED]),
                LedgerEntry.account == Account.PATIENT_RECEIVABLE,
            )
            .group_by(LedgerEntry.claim_id)
        )
        return {prior: int(total) for prior, total in await self._rows(stmt) if prior is not None and total}

    async def patient_share_left(self, prior_claim_id: uuid.UUID) -> int:
        """What of the patient's share the prior claim's standing adjudication leaves (its 835s' PR entries,
        reversals netted) no next payer's claim holds (its coordination postings, less their reversals)."""
        stmt = (
            select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))
            .join(LedgerPosting, _ITS_POSTING)
            .where(
                self.tenant_filter(LedgerEntry.tenant_id),
                LedgerEntry.claim_id == prior_claim_id,
                LedgerEntry.account == Account.PATIENT_RECEIVABLE,
                LedgerPosting.source.in_(
                    [Source.REMITTANCE_CLAIM, Source.COORDINATION_OF_BENEFITS, Source.COORDINATION_REVERSED]
                ),
            )
        )
        return int((await self._rows(stmt))[0][0])

    async def of_claim(self, claim_id: uuid.UUID) -> list[tuple[LedgerEntry, LedgerPosting]]:
        """Every entry on the claim with its posting, oldest first."""
        stmt = (
            select(LedgerEntry, LedgerPosting)
            .join(LedgerPosting, _ITS_POSTING)
            .where(self.tenant_filter(LedgerEntry.tenant_id), LedgerEntry.claim_id == claim_id)
            .order_by(LedgerEntry.created_at, LedgerPosting.id, LedgerEntry.account, LedgerEntry.id)
        )
        return [(entry, posting) for entry, posting in await self._rows(stmt)]

    async def billed_lines(self, claim_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[BilledLine]]:
        """The lines of the claims as built, for matching an 835's service lines."""
        if not claim_ids:
            return {}
        found: dict[uuid.UUID, list[BilledLine]] = {}
        for claim_id, number, code, modifiers, service_date, charge in await self._driver_rows(
            _BILLED_LINES, {"claim_ids": list(claim_ids)}
        ):
            found.setdefault(claim_id, []).append(
                BilledLine(number, code, tuple(modifiers), service_date, charge)
            )
        return found

    async def remittances_of_file(self, file_id: uuid.UUID) -> list[Remittance]:
        stmt = self.statement_for(Remittance).where(Remittance.x12_file_id == file_id)
        return await self._all(stmt.order_by(Remittance.created_at, Remittance.id))


class RemittanceRepository(TenantScopedRepository[Remittance]):
    model = Remittance

    async def page(
        self, *, limit: int, after: tuple[datetime, uuid.UUID] | None, state: RemittanceState | None
    ) -> list[Remittance]:
        stmt = self.base_statement()
        if state is not None:
            stmt = stmt.where(Remittance.state == state)
        return await self.keyset_page(stmt, limit=limit, after=after)
