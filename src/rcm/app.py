"""The Litestar application: routes from every domain, errors, telemetry, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

from rcm import __version__
from rcm.audit.controllers import AuditController
from rcm.config import Settings, app_url_from_admin, get_settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.encounters.controllers import EncounterController, ProviderController
from rcm.identity.plugin import IdentityPlugin
from rcm.identity.ratelimit import rate_limit_config
from rcm.kit.db import create_engine, session_factory
from rcm.kit.errors import EXCEPTION_HANDLERS
from rcm.kit.health import HealthController
from rcm.kit.requestid import echo_request_id, request_id_middleware
from rcm.kit.strict import check_request
from rcm.kit.telemetry import configure_logging, configure_tracing, redact_request_span
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
        # Jobs enqueued by requests go to the process's broker (`rcm dev` has already set up its in-process
        # one and started a worker on it; replacing it here would strand those jobs).
        current_broker()
        try:
            yield
        finally:
            await engine.dispose()

    return Litestar(
        route_handlers=[
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
        ],
        # The identity plugin puts its per-address limit and authentication first; this per-caller limit
        # then keys on the caller authentication found.
        middleware=[request_id_middleware, rate_limit_config(settings).middleware],
        # Strict input on every route, from what the route declares (after guards, before any parsing).
        before_request=check_request,
        before_send=[echo_request_id],
        openapi_config=OpenAPIConfig(
            title="RCM API",
            version=__version__,
            path="/docs",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        logging_config=None,  # structured JSON logging is configured above
        debug=False,
    )
