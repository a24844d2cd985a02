"""The ledger's statements: a remittance received once (the unique trace key decides), postings appended,
a claim's entries and standing charges read. Nothing here updates or deletes: the database refuses it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rcm.claims.models import ClaimLine
from rcm.kit.jsonwrite import encode, model_columns, populate, rows_params
from rcm.kit.models import utcnow
from rcm.kit.repository import TenantScopedRepository
from rcm.ledger.models import Account, LedgerEntry, LedgerPosting, Remittance, RemittanceState
from rcm.ledger.posting import BilledLine, Draft

_REMITTANCE = cast(Table, Remittance.__table__)
_POSTED_COLUMNS = {model: model_columns(model) for model in (LedgerPosting, LedgerEntry)}
# Postings and their entries in ONE constant statement (``rcm.kit.jsonwrite``: each table's rows one JSON
# parameter), whatever their number: the foreign keys are checked at the end of the statement, the
# balance of each posting at commit (``ledger_entry_balanced``).
_POST = text(
    "WITH posting AS ("
    + populate(cast(Table, LedgerPosting.__table__), [name for _, name, _ in _POSTED_COLUMNS[LedgerPosting]])
    + ") "
    + populate(cast(Table, LedgerEntry.__table__), [name for _, name, _ in _POSTED_COLUMNS[LedgerEntry]])
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
    ) -> list[LedgerPosting]:
        """One posting per draft with entries (each sums to zero: checked here and by the database at
        commit), all in one statement."""
        now = utcnow()
        postings: list[LedgerPosting] = []
        entries: list[LedgerEntry] = []
        for draft in drafts:
            if not draft.entries:
                continue
            if draft.total:
                raise ValueError(f"a {draft.source} posting off by {draft.total} cents")
            posting = LedgerPosting.build(
                id=uuid.uuid4(),
                created_at=now,
                source=draft.source,
                claim_id=draft.claim_id,
                remittance_id=remittance_id,
                actor=actor,
            )
            postings.append(posting)
            entries.extend(
                LedgerEntry.build(
                    id=uuid.uuid4(),
                    created_at=now,
                    posting_id=posting.id,
                    account=e.account,
                    amount_cents=e.amount,
                    claim_id=e.claim_id,
                    line_number=e.line_number,
                    adjustment_group=e.group,
                    reason_code=e.reason,
                    remark_codes=list(e.remarks),
                    segment=e.segment,
                    segment_position=e.position,
                )
                for e in draft.entries
            )
        if postings:
            rows = rows_params(
                _POSTED_COLUMNS, [*postings, *entries], tenant_id=self.context.tenant_id, now=now
            )
            await self._execute(_POST, encode(rows))
        return postings

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

    async def of_claim(self, claim_id: uuid.UUID) -> list[tuple[LedgerEntry, LedgerPosting]]:
        """Every entry on the claim with its posting, oldest first."""
        stmt = (
            select(LedgerEntry, LedgerPosting)
            .join(
                LedgerPosting,
                (LedgerPosting.tenant_id == LedgerEntry.tenant_id)
                & (LedgerPosting.id == LedgerEntry.posting_id),
            )
            .where(self.tenant_filter(LedgerEntry.tenant_id), LedgerEntry.claim_id == claim_id)
            .order_by(LedgerEntry.created_at, LedgerPosting.id, LedgerEntry.account, LedgerEntry.id)
        )
        return [(entry, posting) for entry, posting in await self._rows(stmt)]

    async def billed_lines(self, claim_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[BilledLine]]:
        """The lines of the claims as built, for matching an 835's service lines."""
        if not claim_ids:
            return {}
        stmt = self.statement_for(ClaimLine).where(ClaimLine.claim_id.in_(list(claim_ids)))
        found: dict[uuid.UUID, list[BilledLine]] = {}
        for line in await self._all(stmt.order_by(ClaimLine.claim_id, ClaimLine.line_number)):
            found.setdefault(line.claim_id, []).append(
                BilledLine(line.line_number, line.procedure_code, tuple(line.modifiers), line.service_date)
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
