"""The Litestar application: routes from every domain, errors, telemetry, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import License
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

from rcm import __version__
from rcm.audit.controllers import AuditController
from rcm.auditor.controllers import AuditorConsoleController
from rcm.bulk.controllers import BulkIntakeController
from rcm.claims.batch_controllers import SubmissionBatchController
from rcm.claims.controllers import BillingController, BillingSupervisionController, ClaimController
from rcm.codes.controllers import CodeController
from rcm.coding.controllers import CodingController, CodingQueryController, SupervisionController
from rcm.config import Settings, app_database_url, control_database_url, get_settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.dashboard.controllers import AgingClaimsController, SavedViewController
from rcm.denials.controllers import (
    AppealController,
    AppealTemplateController,
    DenialController,
    DenialReportController,
)
from rcm.eligibility.controllers import EligibilityCheckController, EligibilityController
from rcm.encounters.change_controllers import EncounterChangeController
from rcm.encounters.controllers import EncounterController
from rcm.fhir.controllers import fhir_router
from rcm.fhir.reader import warm_models as warm_fhir_models
from rcm.identity.plugin import IdentityPlugin
from rcm.identity.ratelimit import WINDOWS_STATE_KEY, rate_limit_config
from rcm.kit.control import STATE_KEY as CONTROL_STATE_KEY
from rcm.kit.db import create_engine, session_factory
from rcm.kit.errors import EXCEPTION_HANDLERS
from rcm.kit.health import HealthController
from rcm.kit.requestid import echo_request_id, request_id_middleware
from rcm.kit.strict import check_request
from rcm.kit.telemetry import configure_logging, configure_tracing, redact_request_span
from rcm.kit.windows import open_windows
from rcm.ledger.controllers import (
    AdminUnassignedRemittanceController,
    BillingLedgerController,
    ClaimLedgerController,
    DepositController,
    UnassignedRemittanceController,
)
from rcm.patient_billing.controllers import PatientAccountController, StatementController
from rcm.patients.controllers import PatientController
from rcm.providers.controllers import ProviderController
from rcm.reporting.controllers import ReportController
from rcm.reporting.kpi_controllers import KpiController, OperatorReportController, SupervisorReportController
from rcm.reporting.money_routes import MoneyReportController
from rcm.scrub.controllers import ScrubController
from rcm.surface import DOCS_PATH, EdgePlugin, docs, finish_document
from rcm.tenancy.cache import TenantCache
from rcm.tenancy.dependencies import STATE_KEY as TENANT_CACHE_STATE_KEY
from rcm.web.plugin import WebPlugin
from rcm.webhooks.controllers import WebhookDeliveryController, WebhookSubscriptionController
from rcm.worker import current_broker

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    if settings.env != "test":  # under pytest, its own capture owns the log handlers
        configure_logging(settings.log_level)
    configure_tracing(settings.service_name, settings.otlp_endpoint)
    url = app_database_url(settings)
    control_url = control_database_url(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        engine = create_engine(url, pool_size=settings.db_pool_size, application_name="rcm-api")
        if settings.sql_spans:
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
        # The control-plane pool is small: admin routes, first logins and a first signing key are rare.
        control_engine = create_engine(control_url, pool_size=2, application_name="rcm-api-control")
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state[CONTROL_STATE_KEY] = session_factory(control_engine)
        # Keys are read as the app role; only a first start with no key at all creates one, as control.
        app.state.identity_keyring.control = app.state[CONTROL_STATE_KEY]
        app.state.settings = settings
        # Tenant registry rows by slug, for a few seconds (status changes apply within that time).
        app.state[TENANT_CACHE_STATE_KEY] = TenantCache(settings.tenant_cache_ttl_seconds)
        # One key cache per process: unwrapped tenant keys live here for a short TTL, never on disk.
        app.state.keystore = KeyStore(key_provider(settings))
        # Rate-limit windows: Redis shared by the replicas when configured, this process's memory otherwise.
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        windows = open_windows(redis_url, prefix=f"{settings.redis_key_prefix}ratelimit:")
        app.state[WINDOWS_STATE_KEY] = windows
        # Jobs enqueued by requests go to the process's broker (`rcm dev` has already set up its in-process
        # one and started a worker on it; replacing it here would strand those jobs).
        current_broker()
        warm_fhir_models()
        try:
            yield
        finally:
            await windows.aclose()
            await engine.dispose()
            await control_engine.dispose()

    render_plugins, docs_routers = docs(settings)
    app = Litestar(
        route_handlers=[
            *docs_routers,
            HealthController,
            AuditController,
            AuditorConsoleController,
            PatientController,
            EligibilityController,
            EligibilityCheckController,
            ProviderController,
            EncounterController,
            EncounterChangeController,
            BulkIntakeController,
            ReportController,
            MoneyReportController,
            SavedViewController,
            AgingClaimsController,
            KpiController,
            SupervisorReportController,
            OperatorReportController,
            ScrubController,
            CodeController,
            CodingController,
            CodingQueryController,
            SupervisionController,
            ClaimController,
            SubmissionBatchController,
            BillingController,
            BillingSupervisionController,
            ClaimLedgerController,
            BillingLedgerController,
            UnassignedRemittanceController,
            AdminUnassignedRemittanceController,
            DepositController,
            DenialController,
            AppealController,
            AppealTemplateController,
            DenialReportController,
            PatientAccountController,
            StatementController,
            WebhookSubscriptionController,
            WebhookDeliveryController,
            fhir_router(settings),
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
            WebPlugin(),
            EdgePlugin(settings),
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
            path=DOCS_PATH,
            render_plugins=render_plugins,
            license=License(name="Apache-2.0", identifier="Apache-2.0"),
            create_examples=False,
        ),
        logging_config=None,  # structured JSON logging is configured above
        debug=False,
    )
    # The document is finished from the route table once, here, so a bad route fails at start-up.
    finish_document(app)
    return app
