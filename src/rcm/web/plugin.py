"""Wires the pages into the app: the template engine (Jinja, autoescaped, strict about undefined names),
the stylesheet and the login and page routes."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, pass_context
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from markupsafe import Markup, escape

from rcm.identity.middleware import PUBLIC_OPT_KEY
from rcm.web.audit_pages import AuditPages
from rcm.web.dashboard import DashboardController, StaffReportPagesController
from rcm.web.login import LoginController
from rcm.web.pages import PagesController

STATIC_PATH = "/static"


def template_environment() -> Environment:
    """Templates are package data (read through importlib, so the wheel works outside the source tree):
    the pages' own and the dev issuer's login page."""
    loader = ChoiceLoader([PackageLoader("rcm.web", "templates"), PackageLoader("rcm.identity", "templates")])
    environment = Environment(loader=loader, autoescape=True, undefined=StrictUndefined, enable_async=False)
    environment.globals["csrf_form_field"] = csrf_form_field
    return environment


@pass_context
def csrf_form_field(context: Any) -> Markup:
    """``{{ csrf_form_field() }}`` in any form that posts: the hidden field with the session's CSRF token.
    (Not ``csrf_input``: Litestar puts a string of that name, for its own CSRF, in each context.)"""
    field, token = context.get("csrf_field", ""), context.get("csrf_token", "")
    return Markup('<input type="hidden" name="{}" value="{}">').format(escape(field), escape(token))


class WebPlugin(InitPluginProtocol):
    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.template_config = TemplateConfig(
            engine=JinjaTemplateEngine.from_environment(template_environment())
        )
        static = create_static_files_router(
            path=STATIC_PATH,
            directories=[str(files("rcm.web") / "static")],
            include_in_schema=False,
            opt={PUBLIC_OPT_KEY: True},
            # The stylesheet carries no secret: an hour in the browser's cache.
            cache_control=None,
        )
        app_config.route_handlers.extend(
            [
                LoginController,
                PagesController,
                AuditPages,
                DashboardController,
                StaffReportPagesController,
                static,
            ]
        )
        return app_config
