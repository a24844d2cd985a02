"""SQL of secondary and tertiary claims: the adjudications kept for the next payer's 837, which claims a
next payer's claim was built from already (and those claims), and the patients' coverages (priority and
dates are read; nothing sealed is opened here)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rcm.claims.models import Claim, ClaimAdjudication
from rcm.claims.states import ClaimState, Frequency
from rcm.kit.repository import TenantScopedRepository
from rcm.patients.models import Coverage

_ADJUDICATION = cast(Table, ClaimAdjudication.__table__)


class ClaimAdjudicationRepository(TenantScopedRepository[ClaimAdjudication]):
    model = ClaimAdjudication

    async def keep(self, row: ClaimAdjudication) -> None:
        """INSERT the claim's adjudication unless one is kept already (the first is the one its next payer's
        claim was built from)."""
        row.tenant_id = self.context.tenant_id
        values = {
            c.key: getattr(row, c.key) for c in _ADJUDICATION.columns if getattr(row, c.key) is not None
        }
        await self._execute(
            pg_insert(_ADJUDICATION)
            .values(values)
            .on_conflict_do_nothing(index_elements=[_ADJUDICATION.c.tenant_id, _ADJUDICATION.c.claim_id])
        )

    async def of_claims(self, claim_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, ClaimAdjudication]:
        if not claim_ids:
            return {}
        stmt = self.base_statement().where(ClaimAdjudication.claim_id.in_(list(claim_ids)))
        return {row.claim_id: row for row in await self._all(stmt)}

    async def followed(self, claim_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        """Those of the claims a next payer's original claim was built from already."""
        stmt = select(Claim.primary_claim_id).where(
            self.tenant_filter(Claim.tenant_id),
            Claim.primary_claim_id.in_(list(claim_ids)),
            Claim.frequency == 1,
        )
        return {row for row in (await self._execute(stmt)).scalars() if row is not None}

    async def next_claims(self, claim_ids: Collection[uuid.UUID]) -> list[Claim]:
        """The live next payers' claims built from the claims (originals and replacements; not voided, closed
        or a void), oldest first."""
        if not claim_ids:
            return []
        stmt = (
            self.statement_for(Claim)
            .where(
                Claim.primary_claim_id.in_(list(claim_ids)),
                Claim.state.not_in([ClaimState.VOIDED, ClaimState.CLOSED]),
                Claim.frequency != Frequency.VOID,
            )
            .order_by(Claim.created_at, Claim.id)
        )
        return await self._all(stmt)

    async def coverages_of(self, patient_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[Coverage]]:
        """The patients' coverages, each patient's in the order they were entered (one statement)."""
        if not patient_ids:
            return {}
        stmt = (
            self.statement_for(Coverage)
            .where(Coverage.patient_id.in_(list(patient_ids)))
            .order_by(Coverage.created_at, Coverage.id)
        )
        found: dict[uuid.UUID, list[Coverage]] = {}
        for row in await self._all(stmt):
            found.setdefault(row.patient_id, []).append(row)
        return found
