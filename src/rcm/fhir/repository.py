"""All SQL of the FHIR intake: the identifier links."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from rcm.fhir.models import FhirResourceLink, LinkedType, TargetType
from rcm.kit.models import utcnow
from rcm.kit.repository import TenantScopedRepository


class FhirLinkRepository(TenantScopedRepository[FhirResourceLink]):
    model = FhirResourceLink

    async def targets(
        self, resource_type: LinkedType, indexes: Sequence[bytes]
    ) -> list[tuple[bytes, TargetType, uuid.UUID]]:
        """(identifier index, target type, target id) of the links among ``indexes``."""
        if not indexes:
            return []
        stmt = select(
            FhirResourceLink.identifier_bidx, FhirResourceLink.target_type, FhirResourceLink.target_id
        ).where(
            self.tenant_filter(FhirResourceLink.tenant_id),
            FhirResourceLink.resource_type == resource_type,
            FhirResourceLink.identifier_bidx.in_(list(indexes)),
        )
        return [(row[0], row[1], row[2]) for row in await self._rows(stmt)]

    async def link(
        self,
        resource_type: LinkedType,
        indexes: Iterable[bytes],
        target_type: TargetType,
        target_id: uuid.UUID,
    ) -> None:
        """Remember ``indexes`` as naming the target. An identifier already linked keeps its first target:
        a record's identity never moves (and a concurrent resend racing this one is no error)."""
        now = utcnow()
        rows = [
            {
                "tenant_id": self.context.tenant_id,
                "id": uuid.uuid4(),
                "created_at": now,
                "resource_type": resource_type,
                "identifier_bidx": index,
                "target_type": target_type,
                "target_id": target_id,
            }
            for index in dict.fromkeys(indexes)
        ]
        if rows:
            await self._execute(insert(FhirResourceLink).on_conflict_do_nothing(), rows)
