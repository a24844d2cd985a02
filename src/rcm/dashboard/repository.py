"""All SQL of saved views."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Executable, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert

from rcm.dashboard.models import SavedView
from rcm.kit.repository import TenantScopedRepository


class SavedViewRepository(TenantScopedRepository[SavedView]):
    """A person's views: every statement names the owner, so one person never reads another's."""

    model = SavedView

    async def of_owner(self, owner: str) -> list[SavedView]:
        stmt = self.base_statement().where(SavedView.owner_subject == owner).order_by(SavedView.name)
        return await self._all(stmt)

    async def count_of_owner(self, owner: str) -> int:
        stmt = select(func.count()).where(
            self.tenant_filter(SavedView.tenant_id), SavedView.owner_subject == owner
        )
        return int((await self._execute(stmt)).scalar_one())

    async def upsert(
        self, *, owner: str, name: str, report: str, parameters: dict[str, Any]
    ) -> tuple[uuid.UUID, bool]:
        """Save the owner's view ``name`` (replacing one of that name, keeping its id) in one statement, so
        two tabs saving the same name at once both succeed. Its id, and whether it is new."""
        (tenant,) = self.context.tenant_ids
        stmt = insert(SavedView).values(
            tenant_id=tenant,
            id=uuid.uuid4(),
            owner_subject=owner,
            name=name,
            report=report,
            parameters=parameters,
        )
        upsert: Executable = stmt.on_conflict_do_update(
            constraint="uq_saved_view_tenant_id_owner_subject_name",
            set_={
                "report": stmt.excluded.report,
                "parameters": stmt.excluded.parameters,
                "updated_at": func.now(),
            },
        ).returning(SavedView.id, literal_column("xmax = 0").label("created"))
        row = (await self._execute(upsert)).one()
        return row.id, bool(row.created)

    async def owned(self, owner: str, view_id: uuid.UUID) -> SavedView | None:
        stmt = self.base_statement().where(SavedView.owner_subject == owner, SavedView.id == view_id)
        return await self._first(stmt)

    async def remove(self, owner: str, view_id: uuid.UUID) -> bool:
        """Delete the owner's view; False when there was none (another's id included)."""
        result = await self._execute(
            delete(SavedView)
            .where(
                self.tenant_filter(SavedView.tenant_id),
                SavedView.owner_subject == owner,
                SavedView.id == view_id,
            )
            .returning(SavedView.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None
