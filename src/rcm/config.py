"""One settings object, read from ``RCM_*`` variables and validated at start-up.

A bad value fails fast with pydantic's message, which names the variable (``RCM_...``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

APP_ROLE = "rcm_app"
OWNER_ROLE = "rcm_owner"
# The audit chainer and checkpointer: seals events into the hash chains and writes checkpoints, which the app
# role can no longer do. Owns nothing, cannot bypass RLS.
AUDIT_ROLE = "rcm_audit"
SCHEMA = "rcm"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RCM_", env_file=".env", extra="ignore")

    # Production unless told otherwise: the password-free dev issuer, demo clients with well-known secrets and
    # auto-created key files exist only with RCM_ENV=dev (set by `make run`) or test.
    env: Literal["dev", "test", "prod"] = "prod"
    # Administrative connection: runs migrations and role bootstrap. Unset in dev = embedded PostgreSQL.
    database_url: SecretStr | None = None
    # The application's connection. Unset = the admin URL with the user swapped for the app role.
    app_database_url: SecretStr | None = None
    app_database_password: SecretStr | None = None
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # The audit chainer's connection (role rcm_audit). Unset = the admin URL with the user swapped.
    audit_database_url: SecretStr | None = None
    audit_database_password: SecretStr | None = None

    # Audit anchoring: the chainer seals new events every `audit_seal_interval_seconds`; a tenant's chain head
    # is signed (Ed25519, key under <data_dir>/audit-keys) once `audit_checkpoint_every_events` new events
    # are sealed or `audit_checkpoint_every_seconds` have passed since its last checkpoint, and each
    # checkpoint is also written to `audit_anchor_dir`, outside the database.
    audit_seal_interval_seconds: float = Field(default=5.0, gt=0, le=60)
    audit_checkpoint_every_events: int = Field(default=1000, ge=1)
    audit_checkpoint_every_seconds: float = Field(default=30.0, gt=0, le=3600)
    audit_anchor_dir: Path | None = None
    # Stored Idempotency-Key responses are purged (hourly, by the worker's scheduler) after this long.
    idempotency_retention_hours: int = Field(default=72, ge=1)

    data_dir: Path = Path(".rcm")
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Key-encryption key provider: "local" keeps 32-byte KEKs as files in kek_directory (created in dev).
    kek_provider: Literal["local"] = "local"
    kek_directory: Path | None = None

    # Message broker for dramatiq. Unset = an in-process broker (dev and tests without RabbitMQ).
    broker_url: str | None = None

    # OpenTelemetry: OTLP/HTTP endpoint for traces; unset = tracing stays in-process (no exporter).
    otlp_endpoint: str | None = None
    # Spans for every SQL statement cost about a millisecond of CPU per statement with the SDK; they are
    # recorded when traces leave the process (otlp_endpoint) or when asked for (tests, local debugging).
    # Request spans, and so trace ids in audit events and error bodies, are always there.
    trace_sql: bool | None = None
    service_name: str = "rcm"

    # Identity
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    dev_issuer_enabled: bool = True
    # JSON list of {"issuer": ..., "audience": ..., "jwks_uri": ...} for external OIDC issuers.
    oidc_issuers: str = "[]"

    # Request limits
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # Per source address, before authentication, on every route (token endpoint included).
    rate_limit_per_ip_per_minute: int = Field(default=1200, ge=1)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url", "app_database_url", "audit_database_url")
    @classmethod
    def _must_be_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql", "postgres")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @property
    def sql_spans(self) -> bool:
        return self.trace_sql if self.trace_sql is not None else self.otlp_endpoint is not None

    @property
    def kek_dir(self) -> Path:
        return self.kek_directory or self.data_dir / "keks"

    @property
    def anchor_dir(self) -> Path:
        return self.audit_anchor_dir or self.data_dir / "audit-anchors"


def async_url(url: str) -> str:
    """The SQLAlchemy asyncpg form of a libpq-style URL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def app_url_from_admin(admin_url: str, password: str | None, *, role: str = APP_ROLE) -> str:
    """Same server and database as the admin URL, connecting as the application (or another) role."""
    parsed = make_url(admin_url).set(username=role, password=password)
    return parsed.render_as_string(hide_password=False)


def audit_database_url(settings: Settings) -> str:
    """The audit chainer's URL (role rcm_audit): RCM_AUDIT_DATABASE_URL, else derived from the admin URL."""
    if settings.audit_database_url is not None:
        return settings.audit_database_url.get_secret_value()
    if settings.database_url is None:
        raise RuntimeError(
            "RCM_AUDIT_DATABASE_URL (or RCM_DATABASE_URL) must be set to run the audit chainer"
        )
    password = settings.audit_database_password
    return app_url_from_admin(
        settings.database_url.get_secret_value(),
        password.get_secret_value() if password else None,
        role=AUDIT_ROLE,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
