"""Wires identity into the app: routes, the per-address rate limit and authentication middleware (outermost,
in that order), the key ring and token service."""

from __future__ import annotations

from litestar import Router
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol

from rcm.config import Settings
from rcm.identity.admin_people import AdminPeopleController
from rcm.identity.admin_read import AdminReadController
from rcm.identity.break_glass_routes import BreakGlassController, BreakGlassReviewController
from rcm.identity.controllers import AdminController, DevIssuerController, OAuthController
from rcm.identity.dev_login import DevLoginController
from rcm.identity.keys import KeyRing
from rcm.identity.middleware import authentication_middleware
from rcm.identity.oidc import dev_issuer_active
from rcm.identity.ratelimit import peer_rate_limit_config
from rcm.identity.server import TokenService
from rcm.identity.status import PrincipalStatus
from rcm.identity.tokens import VerifiedTokens
from rcm.identity.web_session import EndedSessions


class IdentityPlugin(InitPluginProtocol):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keyring = KeyRing(settings)
        self.tokens = TokenService(settings, self.keyring)
        self.status = PrincipalStatus(settings.principal_status_ttl_seconds)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        # The admin controllers share paths (POST and GET /api/v1/admin/tenants/{slug}/clients): registered
        # apart, Litestar 2.25 builds a second OPTIONS handler for a shared path with parameters and refuses
        # to start, so every admin controller goes into this one router.
        admin = Router(
            path="/",
            route_handlers=[
                AdminController,
                AdminPeopleController,
                AdminReadController,
                BreakGlassReviewController,
            ],
        )
        app_config.route_handlers.extend([OAuthController, BreakGlassController, admin])
        if dev_issuer_active(self.settings):
            app_config.route_handlers.extend([DevIssuerController, DevLoginController])
        # Outermost first: the per-address limit, then authentication (the app's per-caller limit follows).
        app_config.middleware[0:0] = [
            peer_rate_limit_config(self.settings).middleware,
            authentication_middleware(),
        ]
        app_config.state["identity_keyring"] = self.keyring
        app_config.state["identity_tokens"] = self.tokens
        app_config.state["identity_status"] = self.status
        app_config.state["identity_verified_tokens"] = VerifiedTokens()
        app_config.state["web_sessions"] = EndedSessions(
            self.settings.principal_status_ttl_seconds, self.settings.web_session_absolute_seconds
        )
        return app_config
