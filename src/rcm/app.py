"""The Litestar application: routes from every domain, errors, telemetry, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import License
from litestar.plugins import InitPluginProtocol
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from rcm import __version__
from rcm.audit.controllers import AuditController
from rcm.config import Settings, app_url_from_admin, get_settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.encounters.controllers import EncounterController, ProviderController
from rcm.idempotency.service import HEADER as IDEMPOTENCY_HEADER
from rcm.idempotency.service import REPLAYED_HEADER
from rcm.identity.middleware import PUBLIC_OPT_KEY
from rcm.identity.plugin import IdentityPlugin
from rcm.identity.ratelimit import WINDOWS_STATE_KEY, rate_limit_config
from rcm.identity.scopes import ALL_SCOPES
from rcm.kit.db import create_engine, session_factory
from rcm.kit.edge import forwarded_middleware_factory, security_headers_hook
from rcm.kit.errors import EXCEPTION_HANDLERS
from rcm.kit.health import HealthController
from rcm.kit.openapi import OpenAPIPolicy, finish_openapi
from rcm.kit.requestid import echo_request_id, request_id_middleware
from rcm.kit.telemetry import configure_logging, configure_tracing, redact_request_span
from rcm.kit.windows import open_windows
from rcm.patients.controllers import PatientController
from rcm.reporting.controllers import ReportController
from rcm.worker import current_broker


def app_database_url(settings: Settings) -> str:
    if settings.app_database_url is not None:
        return settings.app_database_url.get_secret_value()
    if settings.database_url is None:
        raise RuntimeError("RCM_DATABASE_URL (or RCM_APP_DATABASE_URL) must be set to serve the API")
    password = settings.app_database_password.get_secret_value() if settings.app_database_password else None
    return app_url_from_admin(settings.database_url.get_secret_value(), password)


DOCS_PATH = "/docs"
OPENAPI_JSON = f"{DOCS_PATH}/openapi.json"
_DOCS_ASSETS = f"{DOCS_PATH}/assets"


def _docs(settings: Settings) -> tuple[list[OpenAPIRenderPlugin], list[Router]]:
    """Swagger UI at /docs from the assets of the installed ``swagger-ui-bundle-v2`` package (Apache-2.0,
    licence in its dist-info), never a CDN: the pages work offline and load nothing from third parties.
    With RCM_API_DOCS=false only the JSON document is served (at /docs/openapi.json, and /docs itself)."""
    if not settings.api_docs:
        return [JsonRenderPlugin(path="/openapi.json")], []
    swagger = SwaggerRenderPlugin(
        path="/",
        js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
        css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{_DOCS_ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{_DOCS_ASSETS}/favicon-32x32.png'>",
    )
    assets = create_static_files_router(
        path=_DOCS_ASSETS,
        directories=[str(swagger_ui_path)],
        include_in_schema=False,
        opt={PUBLIC_OPT_KEY: True},
        cache_control=None,
    )
    return [swagger], [assets]


# The one security scheme of the API: Bearer access tokens from /oauth/token (client credentials for
# practice systems, jwt-bearer for people). The token endpoint itself authenticates clients with HTTP Basic
# or a client assertion, documented on the operation.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "oauth2": {
        "type": "oauth2",
        "description": "Access tokens from the token endpoint, sent as `Authorization: Bearer <token>`.",
        "flows": {
            "clientCredentials": {
                "tokenUrl": "/oauth/token",
                "scopes": {scope: scope for scope in sorted(ALL_SCOPES)},
            }
        },
    },
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}


class EdgePlugin(InitPluginProtocol):
    """Listed after the identity plugin, so its forwarded-address middleware is the outermost of all:
    the per-address rate limit, the audit trail and everything else see the trusted client address."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.insert(0, forwarded_middleware_factory(self.settings.trusted_proxies))
        app_config.before_send.append(security_headers_hook(DOCS_PATH))
        return app_config


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    if settings.env != "test":  # under pytest, its own capture owns the log handlers
        configure_logging(settings.log_level)
    configure_tracing(settings.service_name, settings.otlp_endpoint)
    url = app_database_url(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        engine = create_engine(url, pool_size=settings.db_pool_size, application_name="rcm-api")
        if settings.sql_spans:
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.settings = settings
        # One key cache per process: unwrapped tenant keys live here for a short TTL, never on disk.
        app.state.keystore = KeyStore(key_provider(settings))
        # Rate-limit windows: Redis shared by the replicas when configured, this process's memory otherwise.
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        windows = open_windows(redis_url, prefix=f"{settings.redis_key_prefix}ratelimit:")
        app.state[WINDOWS_STATE_KEY] = windows
        # Jobs enqueued by requests go to the process's broker (`rcm dev` has already set up its in-process
        # one and started a worker on it; replacing it here would strand those jobs).
        current_broker()
        try:
            yield
        finally:
            await windows.aclose()
            await engine.dispose()

    render_plugins, docs_routers = _docs(settings)
    app = Litestar(
        route_handlers=[
            *docs_routers,
            HealthController,
            AuditController,
            PatientController,
            ProviderController,
            EncounterController,
            ReportController,
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        plugins=[
            OpenTelemetryPlugin(
                OpenTelemetryConfig(
                    server_request_hook_handler=redact_request_span, exclude_spans=["receive", "send"]
                )
            ),
            IdentityPlugin(settings),
            EdgePlugin(settings),
        ],
        # The identity plugin puts its per-address limit and authentication first; this per-caller limit
        # then keys on the caller authentication found.
        middleware=[request_id_middleware, rate_limit_config(settings).middleware],
        before_send=[echo_request_id],
        openapi_config=OpenAPIConfig(
            title="RCM API",
            version=__version__,
            path=DOCS_PATH,
            render_plugins=render_plugins,
            license=License(name="Apache-2.0", identifier="Apache-2.0"),
            create_examples=False,
        ),
        logging_config=None,  # structured JSON logging is configured above
        debug=False,
    )
    # The document is finished from the route table once, here, so a bad route fails at start-up.
    finish_openapi(
        app,
        OpenAPIPolicy(
            public_opt_key=PUBLIC_OPT_KEY,
            required_headers=frozenset({IDEMPOTENCY_HEADER}),
            replay_header=REPLAYED_HEADER,
            security_schemes=SECURITY_SCHEMES,
            security=[{"oauth2": []}, {"bearer": []}],
            scoped_scheme="oauth2",
        ),
    )
    return app


def server_config(app: Litestar, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """How the API is served (``rcm serve``, ``rcm dev`` and the live-server tests alike)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        # No uvicorn access log: its lines carry query strings; requests are traced and audited instead.
        access_log=False,
        log_config=None,
        # No "server: uvicorn" banner on any response.
        server_header=False,
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; the app's own trusted-proxy
        # setting (RCM_TRUSTED_PROXIES, kit/edge.py) is the only one that decides.
        proxy_headers=False,
        forwarded_allow_ips="",
        **options,
    )
