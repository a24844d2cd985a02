"""The pages of a signed-in person: ``/app`` (the practices they can open). A practice's page,
``/app/t/{slug}``, is its dashboard (``rcm.web.dashboard``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.response import Template

from rcm.identity.middleware import current_principal
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
