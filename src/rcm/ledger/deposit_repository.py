"""The reads of the EFT reassociation report: a practice's 835 payments and reported deposits by date."""

from __future__ import annotations

from datetime import date

from rcm.kit.repository import TenantScopedRepository
from rcm.ledger.models import Deposit, Remittance


class DepositRepository(TenantScopedRepository[Deposit]):
    model = Deposit

    async def payments_between(self, since: date, until: date) -> list[Remittance]:
        """The practice's 835 payments paid from ``since`` to ``until`` (both included), by date."""
        stmt = (
            self.statement_for(Remittance)
            .where(Remittance.paid_on >= since, Remittance.paid_on <= until)
            .order_by(Remittance.paid_on, Remittance.created_at, Remittance.id)
        )
        return await self._all(stmt)

    async def deposits_between(self, since: date, until: date) -> list[Deposit]:
        """The deposits the practice reported from ``since`` to ``until`` (both included), by date."""
        stmt = (
            self.base_statement()
            .where(Deposit.deposited_on >= since, Deposit.deposited_on <= until)
            .order_by(Deposit.deposited_on, Deposit.created_at, Deposit.id)
        )
        return await self._all(stmt)
