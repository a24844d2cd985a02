"""All SQL of the dashboard: saved views, and the claims behind an AR-aging cell."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Executable, Select, and_, delete, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import insert

from rcm.claims.models import Claim
from rcm.dashboard.models import SavedView
from rcm.kit.pagination import after_key
from rcm.kit.repository import TenantRowRepository, TenantScopedRepository
from rcm.ledger.models import RECEIVABLES, Account, LedgerEntry
from rcm.reporting.models import ReportClaimBalance


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


# -- the claims behind an AR-aging cell ----------------------------------------------------------------


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
class ClaimAmounts:
    charge_cents: int = 0
    paid_cents: int = 0
    adjusted_cents: int = 0
    balance_cents: int = 0


class DrillRepository(TenantRowRepository[Claim]):
    """The claims behind an AR-aging cell: ids, numbers, dates, payers, statuses and ledger sums (no PHI
    column is read), keyset-paged on the claim's ``(created_at, id)``. (A KPI's claims: the KPI
    repository's own statements, ``rcm.reporting.kpis.kpi_claims``.)"""

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
