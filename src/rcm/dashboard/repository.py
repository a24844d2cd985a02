"""All SQL of the dashboard: saved views, and the claims behind a KPI or an AR-aging cell."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Executable, Select, and_, delete, exists, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import insert

from rcm.claims.models import Claim, ClaimEvent
from rcm.claims.states import Cause, ClaimState
from rcm.dashboard.models import SavedView
from rcm.kit.pagination import after_key
from rcm.kit.repository import TenantRowRepository, TenantScopedRepository
from rcm.ledger.models import RECEIVABLES, Account, LedgerEntry
from rcm.reporting.models import ReportClaimBalance
from rcm.scrub.models import ScrubOutcome, ScrubRun


class SavedViewRepository(TenantScopedRepository[SavedView]):
    """A person's views: every statement names the owner, so one person never reads another's."""

    model = SavedView

    async def of_owner(self, owner: str) -> list[SavedView]:
        stmt = self.base_statement().where(SavedView.owner_subject == owner).order_by(SavedView.name)
        return await self._all(stmt)

    async def count_of_owner(self, owner: str) -> int:
        stmt = select(func.count()).where(
            self.tenant_filter(SavedView.tenant_id), SavedView.owner_subject == owner
        )
        return int((await self._execute(stmt)).scalar_one())

    async def upsert(
        self, *, owner: str, name: str, report: str, parameters: dict[str, Any]
    ) -> tuple[uuid.UUID, bool]:
        """Save the owner's view ``name`` (replacing one of that name, keeping its id) in one statement, so
        two tabs saving the same name at once both succeed. Its id, and whether it is new."""
        (tenant,) = self.context.tenant_ids
        stmt = insert(SavedView).values(
            tenant_id=tenant,
            id=uuid.uuid4(),
            owner_subject=owner,
            name=name,
            report=report,
            parameters=parameters,
        )
        upsert: Executable = stmt.on_conflict_do_update(
            constraint="uq_saved_view_tenant_id_owner_subject_name",
            set_={
                "report": stmt.excluded.report,
                "parameters": stmt.excluded.parameters,
                "updated_at": func.now(),
            },
        ).returning(SavedView.id, literal_column("xmax = 0").label("created"))
        row = (await self._execute(upsert)).one()
        return row.id, bool(row.created)

    async def owned(self, owner: str, view_id: uuid.UUID) -> SavedView | None:
        stmt = self.base_statement().where(SavedView.owner_subject == owner, SavedView.id == view_id)
        return await self._first(stmt)

    async def remove(self, owner: str, view_id: uuid.UUID) -> bool:
        """Delete the owner's view; False when there was none (another's id included)."""
        result = await self._execute(
            delete(SavedView)
            .where(
                self.tenant_filter(SavedView.tenant_id),
                SavedView.owner_subject == owner,
                SavedView.id == view_id,
            )
            .returning(SavedView.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None


# -- the claims behind a figure ------------------------------------------------------------------------

_PAID = (ClaimState.PAID.value, ClaimState.PARTIALLY_PAID.value)
_ADJUDICATED = (*_PAID, ClaimState.DENIED.value)
_ANSWERED = (ClaimState.ACCEPTED.value, ClaimState.REJECTED.value, *_ADJUDICATED)


@dataclass(frozen=True, slots=True)
class OpenFilter:
    """Claims with an open balance now (the reports' per-claim rollup), aged at ``as_of`` from the date of
    service or the first submission. ``payer`` 'patient' means the patients' balances."""

    as_of: date
    basis: str  # service_date | submission_date
    bucket_range: tuple[date | None, date | None] | None  # the basis date's bounds (both included)
    unsubmitted: bool  # only claims never submitted
    payer: str | None
    patient_payer: str  # the reports' name for patients as a payer


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Claims by an event in a period (UTC instants, end excluded), as the KPIs count them."""

    start: datetime
    end: datetime
    payer: str | None


@dataclass(frozen=True, slots=True)
class ClaimAmounts:
    charge_cents: int = 0
    paid_cents: int = 0
    adjusted_cents: int = 0
    balance_cents: int = 0


class DrillRepository(TenantRowRepository[Claim]):
    """The claims behind a KPI or an AR-aging cell: ids, numbers, dates, payers, statuses and ledger sums
    (no PHI column is read). Every list is keyset-paged on the claim's ``(created_at, id)``."""

    model = Claim

    def _page(self, stmt: Select[Any], after: tuple[datetime, uuid.UUID] | None, limit: int) -> Select[Any]:
        if after is not None:
            stmt = stmt.where(after_key(Claim.created_at, Claim.id, after))
        return stmt.order_by(Claim.created_at, Claim.id).limit(limit)

    def _claims(self) -> Select[Any]:
        return select(
            Claim.id,
            Claim.created_at,
            Claim.patient_control_number,
            Claim.service_date,
            Claim.payer_id,
            Claim.state,
        ).where(self.tenant_filter(Claim.tenant_id))

    async def open_claims(
        self, f: OpenFilter, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Any]:
        b = ReportClaimBalance
        since = b.service_date if f.basis == "service_date" else b.submitted_on
        patients = f.payer == f.patient_payer
        stmt = (
            self._claims()
            .add_columns(b.insurance_cents, b.patient_cents)
            .join(b, and_(b.tenant_id == Claim.tenant_id, b.claim_id == Claim.id))
            .where(self.tenant_filter(b.tenant_id))
        )
        if patients:
            stmt = stmt.where(b.patient_cents != 0)
        elif f.payer is not None:
            stmt = stmt.where(b.payer_id == f.payer, b.insurance_cents != 0)
        else:
            stmt = stmt.where(or_(b.insurance_cents != 0, b.patient_cents != 0))
        if f.unsubmitted:
            stmt = stmt.where(since.is_(None))
        elif f.bucket_range is not None:
            low, high = f.bucket_range
            stmt = stmt.where(since.is_not(None))
            if low is not None:
                stmt = stmt.where(since >= low)
            if high is not None:
                stmt = stmt.where(since <= high)
        return await self._rows(self._page(stmt, after, limit))

    def _first_adjudication(self) -> Any:
        ev = ClaimEvent
        return (
            select(ev.claim_id, ev.to_state, ev.created_at)
            .where(
                self.tenant_filter(ev.tenant_id), ev.cause == Cause.REMITTANCE, ev.to_state.in_(_ADJUDICATED)
            )
            .distinct(ev.claim_id)
            .order_by(ev.claim_id, ev.created_at, ev.id)
            .subquery("first_adjudication")
        )

    def _submissions(self) -> Any:
        ev = ClaimEvent
        return (
            select(ev.claim_id, func.min(ev.created_at).label("first_at"), func.count().label("times"))
            .where(self.tenant_filter(ev.tenant_id), ev.to_state == ClaimState.SUBMITTED)
            .group_by(ev.claim_id)
            .subquery("submissions")
        )

    async def adjudicated_claims(
        self, f: EventFilter, *, outcome: str | None, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Any]:
        """Claims whose first 835 adjudication falls in the period (the denial and first-pass rates'
        denominator); ``outcome`` narrows to the denied, the paid, or the paid first time (their
        numerators, and days to payment's claims)."""
        adj, subs = self._first_adjudication(), self._submissions()
        stmt = (
            self._claims()
            .join(adj, adj.c.claim_id == Claim.id)
            .outerjoin(subs, subs.c.claim_id == Claim.id)
            .where(adj.c.created_at >= f.start, adj.c.created_at < f.end)
        )
        paid = adj.c.to_state.in_(_PAID)
        if outcome == "denied":
            stmt = stmt.where(adj.c.to_state == ClaimState.DENIED)
        elif outcome == "paid":
            stmt = stmt.where(paid, subs.c.first_at.is_not(None))
        elif outcome == "first_pass":
            stmt = stmt.where(paid, Claim.frequency == 1, subs.c.times == 1)
        if f.payer is not None:
            stmt = stmt.where(Claim.payer_id == f.payer)
        return await self._rows(self._page(stmt, after, limit))

    async def submitted_claims(
        self, f: EventFilter, *, outcome: str | None, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Any]:
        """Claims first submitted in the period and answered since (the clean claim rate's denominator);
        ``outcome`` 'clean' narrows to its numerator: originals never rejected whose encounter never failed a
        scrub edit."""
        subs = self._submissions()
        ev = ClaimEvent
        answered = exists().where(
            self.tenant_filter(ev.tenant_id), ev.claim_id == Claim.id, ev.to_state.in_(_ANSWERED)
        )
        stmt = (
            self._claims()
            .join(subs, subs.c.claim_id == Claim.id)
            .where(subs.c.first_at >= f.start, subs.c.first_at < f.end, answered)
        )
        if outcome == "clean":
            rejected = exists().where(
                self.tenant_filter(ev.tenant_id), ev.claim_id == Claim.id, ev.to_state == ClaimState.REJECTED
            )
            edited = exists().where(
                self.tenant_filter(ScrubRun.tenant_id),
                ScrubRun.encounter_id == Claim.encounter_id,
                ScrubRun.outcome != ScrubOutcome.CLEAN,
            )
            stmt = stmt.where(~rejected, ~edited, Claim.frequency == 1)
        if f.payer is not None:
            stmt = stmt.where(Claim.payer_id == f.payer)
        return await self._rows(self._page(stmt, after, limit))

    async def amounts(self, claim_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ClaimAmounts]:
        """Each claim's ledger sums: gross charges, payments (payer and patient), write-offs and the open
        balance (both receivables), in cents, in one statement for a page of claims."""
        if not claim_ids:
            return {}
        e = LedgerEntry
        stmt = (
            select(
                e.claim_id,
                func.coalesce(-func.sum(e.amount_cents).filter(e.account == Account.CHARGES), 0),
                func.coalesce(
                    func.sum(e.amount_cents).filter(
                        e.account.in_([Account.PAYMENTS, Account.PATIENT_PAYMENTS])
                    ),
                    0,
                ),
                func.coalesce(func.sum(e.amount_cents).filter(e.account == Account.ADJUSTMENTS), 0),
                func.coalesce(func.sum(e.amount_cents).filter(e.account.in_(list(RECEIVABLES))), 0),
            )
            .where(self.tenant_filter(e.tenant_id), e.claim_id.in_(list(claim_ids)))
            .group_by(e.claim_id)
        )
        return {
            row[0]: ClaimAmounts(int(row[1]), int(row[2]), int(row[3]), int(row[4]))
            for row in await self._rows(stmt)
        }
