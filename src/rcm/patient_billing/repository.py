"""All SQL for patients' balances, payments, plans and statements. A balance is read from the ledger's
entries (never stored): the patient's claims' ``patient_receivable`` entries summed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rcm.claims.models import Claim, ClaimLine
from rcm.claims.states import ClaimState
from rcm.encounters.models import Encounter
from rcm.kit.models import utcnow
from rcm.kit.pagination import after_key
from rcm.kit.repository import TenantScopedRepository
from rcm.ledger.models import Account, LedgerEntry
from rcm.patient_billing.models import (
    InstallmentState,
    PatientPayment,
    PaymentAllocation,
    PaymentPlan,
    PaymentPlanState,
    PlanInstallment,
    Statement,
    StatementRun,
)
from rcm.patients.models import Patient
from rcm.providers.models import Provider

# Claims whose payer has not decided: what the patient owes on their encounter waits for it.
AWAITING_PAYER = (
    ClaimState.CREATED,
    ClaimState.READY,
    ClaimState.SUBMITTED,
    ClaimState.ACCEPTED,
    ClaimState.REJECTED,
    ClaimState.APPEALED,
)
# The reason code a small-balance write-off carries on its ``adjustments`` entry.
WRITE_OFF_REASON = "SMALL_BALANCE"
_RUN = cast(Table, StatementRun.__table__)


@dataclass(frozen=True, slots=True)
class ClaimMoney:
    """One claim of the patient, as the ledger has it (cents; ``patient`` is its balance for the patient)."""

    claim_id: uuid.UUID
    encounter_id: uuid.UUID
    service_date: date
    patient: int
    insurance: int
    charges: int
    insurance_paid: int
    adjustments: int
    patient_paid: int
    written_off: int
    since: datetime | None  # when the patient first became responsible on it


def _sum(account: Account, *extra: Any) -> Any:
    return func.coalesce(func.sum(LedgerEntry.amount_cents).filter(LedgerEntry.account == account, *extra), 0)


class PatientBillingRepository(TenantScopedRepository[PatientPayment]):
    model = PatientPayment

    # Balances ----------------------------------------------------------------------------------------------

    async def lock_patient(self, patient_id: uuid.UUID) -> Patient | None:
        """The patient, locked for this transaction: payments, refunds and plan changes of one patient are
        applied one at a time (a refund is checked against what its payment still has)."""
        stmt = self.for_update(self.statement_for(Patient).where(Patient.id == patient_id))
        found: Patient | None = (await self._execute(stmt)).scalars().first()
        return found

    async def claim_money(self, patient_id: uuid.UUID) -> list[ClaimMoney]:
        """Every claim of the patient with ledger entries, oldest service first."""
        not_write_off = LedgerEntry.reason_code.is_distinct_from(WRITE_OFF_REASON)
        stmt = (
            select(
                Claim.id,
                Claim.encounter_id,
                Claim.service_date,
                _sum(Account.PATIENT_RECEIVABLE),
                _sum(Account.INSURANCE_RECEIVABLE),
                -_sum(Account.CHARGES),
                _sum(Account.PAYMENTS),
                _sum(Account.ADJUSTMENTS, not_write_off),
                _sum(Account.PATIENT_PAYMENTS),
                _sum(Account.ADJUSTMENTS, LedgerEntry.reason_code == WRITE_OFF_REASON),
                func.min(LedgerEntry.created_at).filter(
                    LedgerEntry.account == Account.PATIENT_RECEIVABLE, LedgerEntry.amount_cents > 0
                ),
            )
            .join(
                LedgerEntry,
                and_(LedgerEntry.tenant_id == Claim.tenant_id, LedgerEntry.claim_id == Claim.id),
            )
            .where(self.tenant_filter(Claim.tenant_id), Claim.patient_id == patient_id)
            .group_by(Claim.id, Claim.encounter_id, Claim.service_date)
            .order_by(Claim.service_date, Claim.id)
        )
        found = []
        for row in await self._rows(stmt):
            patient, insurance, charges, paid, adjusted, patient_paid, written_off = (
                int(v) for v in row[3:10]
            )
            found.append(
                ClaimMoney(
                    claim_id=row[0],
                    encounter_id=row[1],
                    service_date=row[2],
                    patient=patient,
                    insurance=insurance,
                    charges=charges,
                    insurance_paid=paid,
                    adjustments=adjusted,
                    patient_paid=patient_paid,
                    written_off=written_off,
                    since=row[10],
                )
            )
        return found

    async def encounters_awaiting_payer(self, patient_id: uuid.UUID) -> set[uuid.UUID]:
        """The patient's encounters with a claim no payer has decided yet (built, sent, rejected for a
        correction, or appealed): a secondary built after the primary's 835 is one."""
        stmt = select(Claim.encounter_id).where(
            self.tenant_filter(Claim.tenant_id),
            Claim.patient_id == patient_id,
            Claim.state.in_(AWAITING_PAYER),
        )
        return {row[0] for row in await self._rows(stmt)}

    async def patients_owing(self, *, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
        """Patients whose claims hold a patient balance other than zero, in id order after ``after``."""
        stmt = self._owing()
        if after is not None:
            stmt = stmt.where(Claim.patient_id > after)
        return [row[0] for row in await self._rows(stmt.order_by(Claim.patient_id).limit(limit))]

    async def count_owing(self) -> int:
        sub = self._owing().subquery()
        return int((await self._execute(select(func.count()).select_from(sub))).scalar_one())

    def _owing(self) -> Any:
        return (
            select(Claim.patient_id)
            .join(
                LedgerEntry,
                and_(LedgerEntry.tenant_id == Claim.tenant_id, LedgerEntry.claim_id == Claim.id),
            )
            .where(self.tenant_filter(Claim.tenant_id), LedgerEntry.account == Account.PATIENT_RECEIVABLE)
            .group_by(Claim.patient_id)
            .having(func.sum(LedgerEntry.amount_cents) != 0)
        )

    async def visit_providers(self, encounter_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Who saw the patient at each encounter (the rendering provider's name: not PHI)."""
        if not encounter_ids:
            return {}
        stmt = (
            select(Encounter.id, Provider.name)
            .join(
                Provider,
                and_(
                    Provider.tenant_id == Encounter.tenant_id, Provider.id == Encounter.rendering_provider_id
                ),
            )
            .where(self.tenant_filter(Encounter.tenant_id), Encounter.id.in_(list(encounter_ids)))
        )
        return {row[0]: row[1] for row in await self._rows(stmt)}

    async def claim_lines(self, claim_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ClaimLine]]:
        if not claim_ids:
            return {}
        stmt = self.statement_for(ClaimLine).where(ClaimLine.claim_id.in_(list(claim_ids)))
        found: dict[uuid.UUID, list[ClaimLine]] = {}
        for line in await self._all(stmt.order_by(ClaimLine.claim_id, ClaimLine.line_number)):
            found.setdefault(line.claim_id, []).append(line)
        return found

    # Payments ----------------------------------------------------------------------------------------------

    async def payments(self, patient_id: uuid.UUID) -> list[PatientPayment]:
        stmt = self.base_statement().where(PatientPayment.patient_id == patient_id)
        return await self._all(stmt.order_by(PatientPayment.created_at, PatientPayment.id))

    async def allocations(self, payment_ids: Sequence[uuid.UUID]) -> list[PaymentAllocation]:
        if not payment_ids:
            return []
        stmt = self.statement_for(PaymentAllocation).where(
            PaymentAllocation.payment_id.in_(list(payment_ids))
        )
        return await self._all(stmt.order_by(PaymentAllocation.created_at, PaymentAllocation.id))

    async def refunds_of(self, payment_id: uuid.UUID) -> list[PatientPayment]:
        return await self._all(self.base_statement().where(PatientPayment.refund_of == payment_id))

    # Plans -------------------------------------------------------------------------------------------------

    async def plan(self, plan_id: uuid.UUID, *, lock: bool = False) -> PaymentPlan | None:
        stmt = self.statement_for(PaymentPlan).where(PaymentPlan.id == plan_id)
        return await self._first(self.for_update(stmt) if lock else stmt)

    async def plans(self, patient_id: uuid.UUID) -> list[PaymentPlan]:
        stmt = self.statement_for(PaymentPlan).where(PaymentPlan.patient_id == patient_id)
        return await self._all(stmt.order_by(PaymentPlan.created_at, PaymentPlan.id))

    async def active_plan(self, patient_id: uuid.UUID) -> PaymentPlan | None:
        stmt = self.statement_for(PaymentPlan).where(
            PaymentPlan.patient_id == patient_id, PaymentPlan.state == PaymentPlanState.ACTIVE
        )
        return await self._first(self.for_update(stmt))

    async def installments(self, plan_ids: Sequence[uuid.UUID]) -> list[PlanInstallment]:
        if not plan_ids:
            return []
        stmt = self.statement_for(PlanInstallment).where(PlanInstallment.plan_id.in_(list(plan_ids)))
        return await self._all(stmt.order_by(PlanInstallment.plan_id, PlanInstallment.number))

    async def plans_overdue(self, before: date) -> list[PaymentPlan]:
        """Active plans with an installment due before ``before`` still unpaid, locked."""
        overdue = (
            select(PlanInstallment.plan_id)
            .where(
                self.tenant_filter(PlanInstallment.tenant_id),
                PlanInstallment.state == InstallmentState.DUE,
                PlanInstallment.due_on < before,
            )
            .scalar_subquery()
        )
        stmt = self.statement_for(PaymentPlan).where(
            PaymentPlan.state == PaymentPlanState.ACTIVE, PaymentPlan.id.in_(overdue)
        )
        return await self._all(self.for_update(stmt.order_by(PaymentPlan.id)))

    async def set_installment(self, row: PlanInstallment, **values: Any) -> None:
        await self._execute(
            update(PlanInstallment)
            .where(self.tenant_filter(PlanInstallment.tenant_id), PlanInstallment.id == row.id)
            .values(**values)
        )
        for key, value in values.items():
            setattr(row, key, value)

    async def set_plan(self, row: PaymentPlan, **values: Any) -> None:
        await self._execute(
            update(PaymentPlan)
            .where(self.tenant_filter(PaymentPlan.tenant_id), PaymentPlan.id == row.id)
            .values(**values)
        )
        for key, value in values.items():
            setattr(row, key, value)

    # Statement runs ----------------------------------------------------------------------------------------

    async def open_run(self, run: StatementRun) -> bool:
        """INSERT the run unless its cycle has one (the unique cycle key): False then."""
        run.tenant_id = self.context.tenant_id
        values = {c.key: getattr(run, c.key) for c in _RUN.columns}
        now = utcnow()
        values["created_at"] = values["created_at"] or now
        values["updated_at"] = values["updated_at"] or now
        stmt = pg_insert(_RUN).values(values).on_conflict_do_nothing().returning(_RUN.c.id)
        return (await self._execute(stmt)).first() is not None

    async def run_of_cycle(self, cycle_start: date) -> StatementRun | None:
        return await self._first(
            self.statement_for(StatementRun).where(StatementRun.cycle_start == cycle_start)
        )

    async def run(self, run_id: uuid.UUID, *, lock: bool = False) -> StatementRun | None:
        stmt = self.statement_for(StatementRun).where(StatementRun.id == run_id)
        if lock:
            found: StatementRun | None = (await self._execute(self.for_update(stmt))).scalars().first()
            return found
        return await self._first(stmt)

    async def runs(self, *, limit: int, after: tuple[datetime, uuid.UUID] | None) -> list[StatementRun]:
        stmt = self.statement_for(StatementRun)
        if after is not None:
            stmt = stmt.where(after_key(StatementRun.created_at, StatementRun.id, after))
        return await self._all(stmt.order_by(StatementRun.created_at, StatementRun.id).limit(limit))

    async def advance_run(self, run: StatementRun, **values: Any) -> None:
        await self._execute(
            update(StatementRun)
            .where(self.tenant_filter(StatementRun.tenant_id), StatementRun.id == run.id)
            .values(**values)
        )
        for key, value in values.items():
            setattr(run, key, value)

    async def statement(self, statement_id: uuid.UUID) -> Statement | None:
        return await self._first(self.statement_for(Statement).where(Statement.id == statement_id))

    async def statements_of_run(self, run_id: uuid.UUID) -> list[Statement]:
        stmt = self.statement_for(Statement).where(Statement.run_id == run_id)
        return await self._all(stmt.order_by(Statement.created_at, Statement.id))

    async def statements_of_patient(self, patient_id: uuid.UUID) -> list[Statement]:
        stmt = self.statement_for(Statement).where(Statement.patient_id == patient_id)
        return await self._all(stmt.order_by(Statement.created_at, Statement.id))

    async def statement_of(self, run_id: uuid.UUID, patient_id: uuid.UUID) -> Statement | None:
        return await self._first(
            self.statement_for(Statement).where(
                Statement.run_id == run_id, Statement.patient_id == patient_id
            )
        )
