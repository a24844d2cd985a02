"""All SQL of eligibility checks and claim status inquiries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from rcm.eligibility.models import CheckStatus, ClaimStatusInquiry, EligibilityBenefit, EligibilityCheck
from rcm.kit.repository import TenantScopedRepository

MAX_LISTED = 100


class EligibilityRepository(TenantScopedRepository[EligibilityCheck]):
    model = EligibilityCheck

    async def for_coverage(
        self, coverage_id: uuid.UUID, *, limit: int = MAX_LISTED
    ) -> list[EligibilityCheck]:
        """The coverage's checks, newest first (``ix_eligibility_check_coverage``)."""
        stmt = (
            self.base_statement()
            .where(EligibilityCheck.coverage_id == coverage_id)
            .order_by(EligibilityCheck.checked_at.desc(), EligibilityCheck.id.desc())
            .limit(limit)
        )
        return await self._all(stmt)

    async def benefits_of(self, check_ids: Sequence[uuid.UUID]) -> list[EligibilityBenefit]:
        stmt = self.statement_for(EligibilityBenefit).where(EligibilityBenefit.check_id.in_(list(check_ids)))
        return await self._all(
            stmt.order_by(
                EligibilityBenefit.check_id, EligibilityBenefit.service_type, EligibilityBenefit.network
            )
        )

    async def latest(self, coverage_id: uuid.UUID) -> EligibilityCheck | None:
        """The coverage's most recent check that got an answer about the coverage (active, inactive or
        unknown): a refused 270 says nothing about the coverage, so it does not hide an earlier answer."""
        stmt = (
            self.base_statement()
            .where(
                EligibilityCheck.coverage_id == coverage_id, EligibilityCheck.status != CheckStatus.REFUSED
            )
            .order_by(EligibilityCheck.checked_at.desc(), EligibilityCheck.id.desc())
            .limit(1)
        )
        return await self._first(stmt)


class InquiryRepository(TenantScopedRepository[ClaimStatusInquiry]):
    model = ClaimStatusInquiry

    async def not_due(self, claim_ids: Sequence[uuid.UUID], *, now: datetime) -> set[uuid.UUID]:
        """Those of ``claim_ids`` asked about recently: an inquiry whose next date is still ahead."""
        if not claim_ids:
            return set()
        stmt = select(ClaimStatusInquiry.claim_id).where(
            self.tenant_filter(ClaimStatusInquiry.tenant_id),
            ClaimStatusInquiry.claim_id.in_(list(claim_ids)),
            ClaimStatusInquiry.next_inquiry_at > now,
        )
        return {row[0] for row in await self._rows(stmt)}

    async def for_claim(self, claim_id: uuid.UUID) -> list[ClaimStatusInquiry]:
        stmt = self.base_statement().where(ClaimStatusInquiry.claim_id == claim_id)
        return await self._all(stmt.order_by(ClaimStatusInquiry.created_at, ClaimStatusInquiry.id))
