"""All SQL of the payer directory and of practices' payer enrollment."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.kit.repository import TenantScopedRepository
from rcm.payers.models import Payer, PayerEnrollment

_PAYER = cast(Table, Payer.__table__)
_ENROLLMENT = cast(Table, PayerEnrollment.__table__)
_DIRECTORY_COLUMNS = (
    "name",
    "claim_filing_indicator",
    "claims_connector",
    "claims_endpoint",
    "eligibility_connector",
    "eligibility_endpoint",
    "status_connector",
    "status_endpoint",
    "status_inquiry_days",
    "timely_filing_days",
    "appeal_days",
)


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    added: int
    changed: int
    unchanged: int


async def upsert_payers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> DirectoryChange:
    """Write the directory's payers (owner role): new ones added, changed ones updated, none removed (claims
    and enrollments refer to them). One read and one statement. A row without ``appeal_days`` (added
    later) has none."""
    rows = [{"appeal_days": None, **row} for row in rows]
    current = {
        row.id: row
        for row in (await session.execute(select(_PAYER).where(_PAYER.c.id.in_([r["id"] for r in rows]))))
    }
    fresh = [r for r in rows if r["id"] not in current]
    changed = [
        r
        for r in rows
        if r["id"] in current and any(getattr(current[r["id"]], c) != r[c] for c in _DIRECTORY_COLUMNS)
    ]
    if fresh or changed:
        stmt = insert(_PAYER).values([*fresh, *changed])
        stmt = stmt.on_conflict_do_update(
            index_elements=[_PAYER.c.id],
            set_={
                **{c: stmt.excluded[c] for c in _DIRECTORY_COLUMNS},
                "updated_at": stmt.excluded.updated_at,
            },
        )
        await session.execute(stmt)
    return DirectoryChange(len(fresh), len(changed), len(rows) - len(fresh) - len(changed))


async def directory_payers(session: AsyncSession, ids: Iterable[str] | None = None) -> dict[str, Payer]:
    """Directory payers by id (all of them without ``ids``): global reference data, any role reads it."""
    stmt = select(Payer).order_by(Payer.id)
    if ids is not None:
        stmt = stmt.where(Payer.id.in_(list(ids)))
    return {payer.id: payer for payer in (await session.execute(stmt)).scalars()}


class EnrollmentRepository(TenantScopedRepository[PayerEnrollment]):
    model = PayerEnrollment

    async def for_payer(self, payer_id: str) -> tuple[PayerEnrollment, Payer] | None:
        """The practice's enrollment with ``payer_id`` and the directory's payer (one statement)."""
        stmt = (
            select(PayerEnrollment, Payer)
            .join(Payer, Payer.id == PayerEnrollment.payer_id)
            .where(self.tenant_filter(PayerEnrollment.tenant_id), PayerEnrollment.payer_id == payer_id)
        )
        row = (await self._execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    async def listed(self) -> list[PayerEnrollment]:
        return await self._all(self.base_statement().order_by(PayerEnrollment.payer_id))

    async def replace_all(self, rows: Sequence[dict[str, Any]]) -> None:
        """The practice's enrollments become exactly ``rows`` (control role; the manifest is the source):
        upserted by payer, and the ones the manifest no longer lists removed."""
        tenant = self.context.tenant_id
        values = [{**row, "tenant_id": tenant} for row in rows]
        keep = [row["payer_id"] for row in rows]
        await self._execute(
            delete(_ENROLLMENT).where(
                self.tenant_filter(_ENROLLMENT.c.tenant_id), _ENROLLMENT.c.payer_id.not_in(keep)
            )
        )
        if not values:
            return
        stmt = insert(_ENROLLMENT).values(values)
        columns = ("name", "submitter_id", "receiver_id", "credentials_reference", "timely_filing_days")
        stmt = stmt.on_conflict_do_update(
            index_elements=[_ENROLLMENT.c.tenant_id, _ENROLLMENT.c.payer_id],
            set_={**{c: stmt.excluded[c] for c in columns}, "updated_at": stmt.excluded.updated_at},
            where=tuple_(*(_ENROLLMENT.c[c] for c in columns)).is_distinct_from(
                tuple_(*(stmt.excluded[c] for c in columns))
            ),
        )
        await self._execute(stmt)

    async def with_payers(
        self, pairs: set[tuple[uuid.UUID, str]]
    ) -> dict[tuple[uuid.UUID, str], tuple[PayerEnrollment, Payer]]:
        """Enrollments (with their directory payer) for (practice, payer) pairs of this scope: one read."""
        if not pairs:
            return {}
        stmt = (
            select(PayerEnrollment, Payer)
            .join(Payer, Payer.id == PayerEnrollment.payer_id)
            .where(
                self.tenant_filter(PayerEnrollment.tenant_id),
                tuple_(PayerEnrollment.tenant_id, PayerEnrollment.payer_id).in_(list(pairs)),
            )
        )
        rows = (await self._execute(stmt)).all()
        return {(e.tenant_id, e.payer_id): (e, p) for e, p in rows}
