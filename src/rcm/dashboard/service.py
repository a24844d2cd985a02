"""Saved views: a person's named report settings, listed, saved (create or replace by name) and deleted.

A view belongs to the person who saved it, inside one practice: no one else lists, reads or deletes it (the
same 404 as a view that does not exist). Its parameters are allow-listed report settings, no PHI; saving and
deleting are audited all the same, as every write is.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from rcm.audit.events import Action
from rcm.dashboard import parameters, schemas
from rcm.dashboard.models import ReportName, SavedView
from rcm.dashboard.repository import SavedViewRepository
from rcm.kit.errors import Conflict, NotFound
from rcm.tenancy.scope import TenantScope

SAVED_VIEW = "saved_view"
MAX_VIEWS_PER_PERSON = 50

# The page each report's view reopens (the dashboard's sections are anchors of its overview).
_PAGES = {
    ReportName.DASHBOARD: ("", ""),
    ReportName.CASH_FLOW: ("", "#cash-flow"),
    ReportName.AR_AGING: ("", "#ar-aging"),
    ReportName.KPIS: ("", "#kpis"),
    ReportName.CLAIMS: ("/claims", ""),
}


def page_href(slug: str, report: ReportName, settings: dict[str, str]) -> str:
    """The page of ``report`` with ``settings`` in its query string."""
    path, anchor = _PAGES[report]
    query = f"?{urlencode(sorted(settings.items()))}" if settings else ""
    return f"/app/t/{slug}{path}{query}{anchor}"


def _view(scope: TenantScope, row: SavedView) -> schemas.SavedView:
    settings = {str(k): str(v) for k, v in row.parameters.items()}
    return schemas.SavedView(
        id=row.id,
        name=row.name,
        report=row.report,
        parameters=settings,
        href=page_href(scope.manifest.slug, row.report, settings),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def list_views(scope: TenantScope) -> list[schemas.SavedView]:
    rows = await scope.repo(SavedViewRepository).of_owner(scope.principal.subject)
    return [_view(scope, row) for row in rows]


async def read_view(scope: TenantScope, view_id: uuid.UUID) -> schemas.SavedView:
    row = await scope.repo(SavedViewRepository).owned(scope.principal.subject, view_id)
    if row is None:
        raise NotFound
    return _view(scope, row)


async def save_view(scope: TenantScope, data: schemas.SavedViewWrite) -> tuple[bool, schemas.SavedView]:
    """Create the caller's view ``data.name``, or replace theirs of that name; whether it is new. 422 for a
    parameter outside the report's allow-list; 409 past ``MAX_VIEWS_PER_PERSON``."""
    settings = parameters.check(data.report, data.parameters)
    repo = scope.repo(SavedViewRepository)
    owner = scope.principal.subject
    view_id, created = await repo.upsert(
        owner=owner, name=data.name, report=data.report.value, parameters=settings
    )
    if created and await repo.count_of_owner(owner) > MAX_VIEWS_PER_PERSON:
        # Counted after the insert so two concurrent saves cannot both slip under the limit; the request
        # boundary rolls the insert back with the error.
        raise Conflict(f"At most {MAX_VIEWS_PER_PERSON} saved views per person: delete one first.")
    scope.audit(
        "saved_view.save",
        Action.CREATE if created else Action.UPDATE,
        resource_type=SAVED_VIEW,
        resource_ids=[view_id],
        detail={"report": data.report.value},
    )
    return created, await read_view(scope, view_id)


async def delete_view(scope: TenantScope, view_id: uuid.UUID) -> None:
    if not await scope.repo(SavedViewRepository).remove(scope.principal.subject, view_id):
        raise NotFound
    scope.audit("saved_view.delete", Action.DELETE, resource_type=SAVED_VIEW, resource_ids=[view_id])
