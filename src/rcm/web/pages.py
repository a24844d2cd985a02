"""The pages of a signed-in person: ``/app`` (the practices they can open) and ``/app/t/{slug}`` (a practice).

The practice page is a placeholder showing the intake summary; the dashboard replaces it. A page gets its
tenant scope exactly as an API route does (``provide_tenant_scope``): another practice's page is the same
404, audited.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.response import Template

from rcm.identity.guards import requires_scopes
from rcm.identity.middleware import current_principal
from rcm.identity.scopes import REPORTS_READ
from rcm.reporting import service as reporting
from rcm.tenancy.dependencies import provide_tenant_scope
from rcm.tenancy.scope import TenantScope
from rcm.web.render import PAGE_EXCEPTION_HANDLERS, PAGE_OPT, page
from rcm.web.service import visible_practices

APP_PATH = "/app"


class PagesController(Controller):
    path = APP_PATH
    tags = ["pages"]
    include_in_schema = False
    opt = PAGE_OPT
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/")
    async def landing(self, request: Request[Any, Any, Any], state: State) -> Template:
        practices = await visible_practices(state.sessions, current_principal(request))
        return page(request, "landing.html", title="Your practices", practices=practices)

    @get(
        "/t/{tenant_slug:str}",
        dependencies={"tenant": Provide(provide_tenant_scope)},
        guards=[requires_scopes(REPORTS_READ)],
    )
    async def practice(
        self, request: Request[Any, Any, Any], tenant: NamedDependency[TenantScope]
    ) -> Template:
        summary = await reporting.intake_summary(tenant, service_date_from=None, service_date_to=None)
        slug = request.path_params["tenant_slug"]
        return page(request, "practice.html", title=f"Practice {slug}", slug=slug, summary=summary)
