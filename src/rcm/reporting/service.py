"""Intake summary: how much work and how many charges a practice has sent, by status.

Aggregates over encounters; no PHI column is read, so nothing here is decrypted or audited per patient.
"""

from __future__ import annotations

from datetime import date

import msgspec

from rcm.encounters.repository import EncounterRepository
from rcm.tenancy.scope import TenantScope


class StatusTotals(msgspec.Struct):
    status: str
    encounters: int
    charge_cents: int


class IntakeSummary(msgspec.Struct):
    service_date_from: date | None
    service_date_to: date | None
    encounters: int
    charge_cents: int  # integer cents: the sum of charge x units over every line
    by_status: list[StatusTotals]


async def intake_summary(
    scope: TenantScope, *, service_date_from: date | None, service_date_to: date | None
) -> IntakeSummary:
    rows = await scope.repo(EncounterRepository).status_totals(
        service_date_from=service_date_from, service_date_to=service_date_to
    )
    totals = [StatusTotals(status=s, encounters=int(n), charge_cents=int(c)) for s, n, c in rows]
    return IntakeSummary(
        service_date_from=service_date_from,
        service_date_to=service_date_to,
        encounters=sum(t.encounters for t in totals),
        charge_cents=sum(t.charge_cents for t in totals),
        by_status=totals,
    )
