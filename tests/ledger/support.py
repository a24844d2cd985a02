"""The ledger tests' shared set-up: a claim submitted, an 835 paying it in part written by our writer, that
835 kept and applied in the practice, and a payment held (its BPR02 off) ready for review."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.acknowledgments import apply_file
from rcm.claims.applying import Outcome
from rcm.claims.models import Claim as OurClaim
from rcm.claims.repository import ClaimRepository
from rcm.claims.states import ClaimState
from rcm.config import Settings
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction
from rcm.tenancy.models import Tenant
from rcm.x12.remittance_model import Adjustment, Claim, Header, ServiceLine
from tests.claims.conftest import Claims, practice_scope, rows
from tests.support import Api
from tests.x12 import remittances as rm


async def submitted_claim(
    claims: Claims, intake: Api, practice: Tenant, **overrides: Any
) -> tuple[OurClaim, list[Any]]:
    """A claim built and submitted (its charges on the ledger), with its lines."""
    claim_id = await claims.new(intake, practice, **overrides)
    await claims.walk(practice, claim_id, ClaimState.SUBMITTED)
    async with practice_scope(claims.sessions, claims.settings, practice) as scope:
        repo = scope.repo(ClaimRepository)
        claim = await repo.get(claim_id)
        lines = await repo.lines(claim_id)
    assert claim is not None
    return claim, list(lines)


def paid_in_part(claim: OurClaim, lines: list[Any]) -> Claim:
    """Each line: 60% paid, 25% CO-45, the rest PR-2 coinsurance."""
    paid_lines = []
    for line in lines:
        paid, written_off = line.charge_cents * 60 // 100, line.charge_cents * 25 // 100
        patient = line.charge_cents - paid - written_off
        paid_lines.append(
            ServiceLine(
                qualifier="HC",
                code=line.procedure_code,
                modifiers=tuple(line.modifiers),
                charge=line.charge_cents,
                paid=paid,
                units=str(line.units),
                service_start=line.service_date,
                service_end=line.service_date,
                adjustments=(
                    Adjustment(group="CO", reason="45", amount=written_off),
                    Adjustment(group="PR", reason="2", amount=patient),
                ),
                control_number=str(line.line_number),
                remarks=("N130",),
            )
        )
    base = rm.claim(1, tuple(paid_lines), icn="ICN7700001")
    return Claim(
        patient_control_number=claim.patient_control_number,
        status=base.status,
        charge=base.charge,
        paid=base.paid,
        filing_indicator=base.filing_indicator,
        payer_claim_control_number=base.payer_claim_control_number,
        patient=base.patient,
        patient_responsibility=base.patient_responsibility,
        lines=base.lines,
    )


def era_file(
    *claims: Claim, trace: str = "EFT0001", off_by: int = 0, control: int = 1, npi: str | None = None
) -> bytes:
    """An 835 of one transaction set paying ``claims`` (BPR02 ``off_by`` cents off: held on arrival)."""
    remittance = rm.remittance(claims)
    h = remittance.header
    header = Header(
        handling=h.handling,
        total_paid=h.total_paid + off_by,
        credit_debit=h.credit_debit,
        payment_method=h.payment_method,
        funds=h.funds,
        payment_date=h.payment_date,
        trace_number=trace,
        trace_originator=h.trace_originator,
        production_date=h.production_date,
        payer=h.payer,
        payee=h.payee if npi is None else rm.Payee(name=h.payee.name, npi=npi),
    )
    return rm.write(rm.Remittance(header=header, claims=remittance.claims), control_number=control).encode()


async def apply_era(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, practice: Tenant, data: bytes
) -> Outcome:
    """The 835 kept in the practice, then applied (``apply_file``), each in a transaction of its own."""
    store = BlobStore()
    async with practice_scope(sessions, settings, practice) as scope:
        row, _ = await files.keep(scope, store, data, direction=Direction.INBOUND, connector="test")
    async with practice_scope(sessions, settings, practice) as scope:
        return await apply_file(scope, store, row.id)


ENTRIES = "SELECT count(*) AS n FROM rcm.ledger_entry WHERE tenant_id = :t"


async def entry_count(owner_engine: AsyncEngine, tenant: Tenant) -> int:
    """The practice's ledger entries: what a refused or repeated decision must leave unchanged."""
    return int((await rows(owner_engine, ENTRIES, t=tenant.id))[0].n)


@dataclass(frozen=True, slots=True)
class Held:
    """A payment held on arrival (BPR02 off), paying ``claim`` in part (``paid``)."""

    claim: OurClaim
    lines: list[Any]
    paid: Claim
    remittance_id: uuid.UUID

    @property
    def url(self) -> str:
        """Its review route (``POST``)."""
        return f"/billing/remittances/{self.remittance_id}/release"


class HoldPayment:
    """``await hold(trace=..., off_by=...)``: a claim of the practice submitted, and an 835 paying it in
    part applied with BPR02 ``off_by`` cents off, so held whole."""

    def __init__(
        self,
        *,
        claims: Claims,
        intake: Api,
        practice: Tenant,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        owner_engine: AsyncEngine,
    ) -> None:
        self.claims, self.intake, self.practice = claims, intake, practice
        self.sessions, self.settings, self.owner_engine = sessions, settings, owner_engine

    async def __call__(self, *, trace: str, off_by: int) -> Held:
        claim, lines = await submitted_claim(self.claims, self.intake, self.practice)
        paid = paid_in_part(claim, lines)
        outcome = await apply_era(
            self.sessions, self.settings, self.practice, era_file(paid, trace=trace, off_by=off_by)
        )
        assert (outcome.posted, outcome.held) == (0, 1)
        [remittance] = await rows(
            self.owner_engine,
            "SELECT id FROM rcm.remittance WHERE tenant_id = :t AND trace_number = :n",
            t=self.practice.id,
            n=trace,
        )
        return Held(claim, lines, paid, remittance.id)
