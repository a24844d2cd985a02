"""SQL of secondary and tertiary claims: the adjudications kept for the next payer's 837 (versioned: a
reversal supersedes, its correction stands), which claims a next payer's claim was built from already (and
those claims), and the patients' coverages (priority and dates are read; nothing sealed is opened here)."""

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
from rcm.x12.remittance_model import REVERSAL

_ADJUDICATION = cast(Table, ClaimAdjudication.__table__)


class ClaimAdjudicationRepository(TenantScopedRepository[ClaimAdjudication]):
    model = ClaimAdjudication

    async def keep(self, row: ClaimAdjudication) -> None:
        """INSERT the claim's adjudication as version 1 unless one is kept already (the first is the one its
        next payer's claim was built from)."""
        row.version = 1
        await self._insert_once(row)

    async def supersede(self, row: ClaimAdjudication) -> None:
        """INSERT a later version (a reversal, a correction), numbered by the caller from ``latest`` (the
        claim is locked by the 835 being applied); a version kept already is left as it is."""
        await self._insert_once(row)

    async def _insert_once(self, row: ClaimAdjudication) -> None:
        row.tenant_id = self.context.tenant_id
        values = {
            c.key: getattr(row, c.key) for c in _ADJUDICATION.columns if getattr(row, c.key) is not None
        }
        key = [_ADJUDICATION.c.tenant_id, _ADJUDICATION.c.claim_id, _ADJUDICATION.c.version]
        await self._execute(
            pg_insert(_ADJUDICATION).values(values).on_conflict_do_nothing(index_elements=key)
        )

    async def latest(self, claim_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, ClaimAdjudication]:
        """Each claim's latest kept version (a reversal included), one statement."""
        if not claim_ids:
            return {}
        stmt = (
            self.base_statement()
            .where(ClaimAdjudication.claim_id.in_(list(claim_ids)))
            .order_by(ClaimAdjudication.claim_id, ClaimAdjudication.version.desc())
            .distinct(ClaimAdjudication.claim_id)
        )
        return {row.claim_id: row for row in await self._all(stmt)}

    async def standing(self, claim_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, ClaimAdjudication]:
        """Each claim's standing adjudication: its latest version, unless that is a reversal whose correction
        has not come (then none stands, and the claim is left out)."""
        latest = await self.latest(claim_ids)
        return {claim_id: row for claim_id, row in latest.items() if row.claim_status != REVERSAL}

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
