"""SQL of secondary and tertiary claims: the adjudications kept for the next payer's 837, and the claims a
next payer's claim follows."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert

from rcm.claims.models import Claim, ClaimAdjudication
from rcm.kit.repository import TenantScopedRepository

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

    async def following(self, claim_id: uuid.UUID) -> Claim | None:
        """The next payer's original claim built from ``claim`` (its secondary, or its tertiary), if any."""
        stmt = self.statement_for(Claim).where(Claim.primary_claim_id == claim_id, Claim.frequency == 1)
        return await self._first(stmt)
