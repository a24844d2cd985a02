"""The reads of the 835's third match rule (``rcm.claims.patient_match``): the practice's claims billed to a
coverage whose member id (blind index) the CLP names, on a date of service and for a billed amount it names,
with their patients' encrypted names (opened by the caller, for these few rows only); and those claims
locked. Every read is tenant-filtered."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from rcm.claims.models import Claim
from rcm.claims.states import ClaimState
from rcm.kit.repository import TenantScopedRepository
from rcm.patients.models import Coverage, Patient


@dataclass(frozen=True, slots=True)
class Candidate:
    """A claim the third rule may match: its keys, and its patient's names still sealed."""

    claim_id: uuid.UUID
    patient_id: uuid.UUID
    service_date: date
    charge_cents: int
    member_index: bytes
    family_name: bytes
    given_name: bytes


class PatientMatchRepository(TenantScopedRepository[Claim]):
    model = Claim

    async def candidates(
        self, member_indexes: Collection[bytes], service_dates: Collection[date], charges: Collection[int]
    ) -> list[Candidate]:
        """Claims (not voided, void or closed) billed to a coverage with one of the member ids, on one of
        the dates, for one of the amounts: one statement, by ``ix_coverage_member``."""
        if not member_indexes:
            return []
        stmt = (
            select(
                Claim.id,
                Claim.patient_id,
                Claim.service_date,
                Claim.total_charge_cents,
                Coverage.member_id_bidx,
                Patient.family_name,
                Patient.given_name,
            )
            .join(Coverage, (Coverage.tenant_id == Claim.tenant_id) & (Coverage.id == Claim.coverage_id))
            .join(Patient, (Patient.tenant_id == Claim.tenant_id) & (Patient.id == Claim.patient_id))
            .where(
                self.tenant_filter(Claim.tenant_id),
                Coverage.member_id_bidx.in_(list(member_indexes)),
                Claim.service_date.in_(list(service_dates)),
                Claim.total_charge_cents.in_(list(charges)),
                # A voided claim, a void and an original closed (replaced) are not the claim paid.
                Claim.state.not_in([ClaimState.VOIDED, ClaimState.CLOSED]),
                Claim.frequency != 8,
            )
            .order_by(Claim.id)
        )
        return [Candidate(*row) for row in await self._rows(stmt)]

    async def locked(self, claim_ids: Collection[uuid.UUID]) -> list[Claim]:
        """The claims, locked in id order (as ``locked_by_numbers`` locks the others)."""
        if not claim_ids:
            return []
        stmt = self.base_statement().where(Claim.id.in_(list(claim_ids))).order_by(Claim.id)
        return await self._all(self.for_update(stmt).execution_options(populate_existing=True))
