"""One settings object, read from ``RCM_*`` variables and validated at start-up.

A bad value fails fast with pydantic's message, which names the variable (``RCM_...``); the CLI turns it into
one line (``describe_invalid_settings``), never a traceback.
"""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url

APP_ROLE = "rcm_app"
# Writes the control plane (signing keys, people's roles and activity, staff assignments, API clients):
# a leaked app credential or an SQL injection in a tenant request cannot mint trust. See rcm.kit.control.
CONTROL_ROLE = "rcm_control"
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
    # The control-plane connection (admin routes, assignment changes, operator commands). Unset = the admin
    # URL with the user swapped for the control role. API pods hold it; workers need it not.
    control_database_url: SecretStr | None = None
    control_database_password: SecretStr | None = None
    # Connections per API process: at least the requests it has in flight (each holds one for its whole
    # transaction), so a loaded process does not open and close overflow connections per request.
    db_pool_size: int = Field(default=20, ge=1, le=200)
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
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # The API's public URL: the token issuer (``iss``), the OAuth metadata and the startup banner use it.
    # Unset = http://RCM_HOST:RCM_PORT, so changing the port changes them all; set it when a proxy or TLS
    # terminator stands in front (every replica must then agree on it, since tokens carry it).
    base_url: str = ""

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
    # JSON list of {"issuer": ..., "audience": ..., "jwks_uri": ...} for external OIDC issuers; an entry may
    # add "client_id", "authorization_endpoint" and "token_endpoint" (or "discovery": true) for browser login.
    oidc_issuers: str = "[]"
    # Browser sessions (the web pages): a session ends after this long without a request (idle) and this long
    # after login whatever happens (absolute); revoking the person ends it on the next request.
    web_session_idle_seconds: int = Field(default=900, ge=60, le=86_400)
    web_session_absolute_seconds: int = Field(default=28_800, ge=300, le=604_800)

    # Break-glass (45 CFR 164.312(a)(2)(ii) emergency access): a short default window, a ceiling per
    # deployment (never above the four hours the database allows), an optional second approver before access
    # starts, and at most this many requests per person in any rolling 24 hours.
    break_glass_default_minutes: int = Field(default=30, ge=1, le=240)
    break_glass_max_minutes: int = Field(default=60, ge=1, le=240)
    break_glass_require_approval: bool = False
    break_glass_max_grants_per_day: int = Field(default=3, ge=1, le=100)

    # Request limits
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # The FHIR endpoint's own limit: real patient bundles (hundreds of encounters, base64 notes) run to
    # several MB. Entries are streamed and validated one by one, so memory stays near the body's own size.
    fhir_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # Per source address, before authentication, on every route (token endpoint included).
    rate_limit_per_ip_per_minute: int = Field(default=1200, ge=1)

    # Redis shared by the API replicas for rate-limit windows (redis://, rediss:// or unix://). Unset = each
    # process keeps its own windows in memory (one process in dev; N replicas would allow N times the limit).
    redis_url: SecretStr | None = None
    # Prefix of every key this deployment writes to Redis, so several deployments can share one database.
    redis_key_prefix: str = Field(default="rcm:", max_length=64)
    # Proxies (addresses or CIDRs, comma-separated) whose X-Forwarded-For / X-Forwarded-Proto are believed.
    # Empty = none: the TCP peer is the caller, so a header cannot forge the audit source address or dodge
    # the per-address rate limit.
    trusted_proxies: Annotated[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], NoDecode] = ()
    # The interactive API pages (/docs, assets served from the installed package, no CDN). Production may turn
    # them off; the OpenAPI JSON stays at /docs/openapi.json for clients and generators.
    api_docs: bool = True
    # Intake dates: how many days past today (UTC) a date of service or birth may be, since a practice in
    # UTC-10 sends "today" while it is already tomorrow in UTC. Old dates of service are accepted.
    future_date_skew_days: int = Field(default=1, ge=0, le=7)
    # Where ``file:`` secret references of tenant manifests (the practice's TIN) are read; unset = none are.
    secrets_dir: Path | None = None

    # Connectors to clearinghouses and payers (rcm.payers): how long one call may take, and the circuit
    # breaker per connector and endpoint: open after this many consecutive transient failures, probe again
    # after the cool-down. Shared by the workers through RCM_REDIS_URL when set.
    connector_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    connector_breaker_failures: int = Field(default=5, ge=1, le=1000)
    connector_breaker_cooldown_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Claim submission (rcm.claims.submission): connector calls per batch before it goes to a biller as a
    # dead letter, the first retry's delay (doubled per attempt, with jitter), how long a call in flight
    # keeps others off its batch (longer than the connector timeout: after it a crashed call is probed),
    # and how often the relay sends the message of every batch still due.
    submission_max_attempts: int = Field(default=8, ge=1, le=100)
    submission_backoff_seconds: float = Field(default=30.0, gt=0, le=3600)
    submission_lease_seconds: float = Field(default=300.0, gt=0, le=86400)
    submission_relay_seconds: float = Field(default=15.0, gt=0, le=3600)

    # Files holding PHI (documents, bulk uploads, later raw X12 and statements), encrypted in chunks
    # (rcm.crypto.stream): "postgres" keeps the chunks in tenant-owned tables, "directory" in files under
    # blob_dir named by opaque ids. The metadata row is in PostgreSQL either way.
    blob_backend: Literal["postgres", "directory"] = "postgres"
    blob_dir: Path | None = None
    # The blob sweep (hourly, by the worker's scheduler) removes files under blob_dir with no committed row
    # and chunks superseded by a re-seal once they are this old: longer than any transaction writing a blob
    # and any read of one (a reader holds one generation from start to end).
    blob_sweep_grace_seconds: int = Field(default=24 * 3600, ge=60)
    # Size limits of an encounter's document and of a bulk intake file (413 past them).
    document_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    bulk_max_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    # Bulk intake commits this many lines per transaction (the job's cursor moves with them).
    bulk_batch_lines: int = Field(default=200, ge=1, le=5000)

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # A revoked API client's or a deactivated person's tokens stop working, and role changes apply, within
    # this many seconds in every API process (the process that made the change applies it at once).
    principal_status_ttl_seconds: float = Field(default=5.0, ge=0, le=60)
    # A tenant's registry row (status, manifest) is re-read at most this often per API process: a
    # suspension, offboarding or manifest change applies within this many seconds (at once where it is made).
    tenant_cache_ttl_seconds: float = Field(default=5.0, ge=0, le=60)

    @model_validator(mode="after")
    def _blob_dir_for_directory(self) -> Settings:
        if self.blob_backend == "directory" and self.blob_dir is None:
            raise ValueError("RCM_BLOB_DIR is required when RCM_BLOB_BACKEND=directory")
        return self

    @field_validator("database_url", "app_database_url", "control_database_url", "audit_database_url")
    @classmethod
    def _must_be_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("postgresql", "postgres")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("base_url")
    @classmethod
    def _must_be_http(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("oidc_issuers")
    @classmethod
    def _must_list_issuers(cls, value: str) -> str:
        # Checked here so a malformed list stops start-up naming the variable, not the first login.
        try:
            entries = json.loads(value)
        except ValueError:
            entries = None
        keys = ("issuer", "audience", "jwks_uri")
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and all(isinstance(e.get(k), str) for k in keys) for e in entries
        ):
            raise ValueError("must be a JSON list of {issuer, audience, jwks_uri} objects")
        return value

    @model_validator(mode="after")
    def _derive_base_url(self) -> Settings:
        if not self.base_url:
            self.base_url = f"http://{_url_host(self.host)}:{self.port}"
        return self

    @model_validator(mode="after")
    def _break_glass_default_within_max(self) -> Settings:
        if self.break_glass_default_minutes > self.break_glass_max_minutes:
            raise ValueError("RCM_BREAK_GLASS_DEFAULT_MINUTES must not exceed RCM_BREAK_GLASS_MAX_MINUTES")
        return self

    @model_validator(mode="after")
    def _submission_lease_outlasts_a_call(self) -> Settings:
        # A lease over before its call could end would let another worker probe, find nothing yet, and send
        # the batch a second time.
        if self.submission_lease_seconds <= self.connector_timeout_seconds:
            raise ValueError("RCM_SUBMISSION_LEASE_SECONDS must exceed RCM_CONNECTOR_TIMEOUT_SECONDS")
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):
            # "10.0.0.0/8, 192.0.2.7" (or the same as a JSON list, as pydantic-settings writes lists)
            text = value.strip().removeprefix("[").removesuffix("]")
            value = [part.strip().strip('"') for part in text.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            try:
                return tuple(ipaddress.ip_network(str(part), strict=False) for part in value)
            except ValueError as exc:
                raise ValueError(f"must be IP addresses or CIDRs, comma-separated ({exc})") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _must_be_redis(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
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


def _url_host(host: str) -> str:
    """The host part of a URL for a bind address: a wildcard is reached through the loopback address."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - mapping the wildcard away, not binding to it
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class SettingError(Exception):
    """A setting is missing or wrong for what was asked; the CLI prints it as one line and exits 2."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


def require_dev_env(settings: Settings, command: str, *, allow_test: bool = True) -> None:
    """Refuse a development-only command (demo data and the password-free dev issuer) outside dev."""
    allowed = ("dev", "test") if allow_test else ("dev",)
    if settings.env not in allowed:
        raise SettingError(
            "RCM_ENV",
            f"`{command}` is for development only and runs only with RCM_ENV=dev (RCM_ENV is {settings.env})",
        )


def describe_invalid_settings(error: ValidationError) -> str:
    """One line naming each bad variable and what is wrong with it; never the value (it may be a secret)."""
    parts = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        name = "RCM_" + "_".join(str(part) for part in item["loc"]).upper() if item["loc"] else "RCM_*"
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{name}: {' '.join(message.split())}")
    return "invalid setting " + "; ".join(parts)


def async_url(url: str) -> str:
    """The SQLAlchemy asyncpg form of a libpq-style URL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def app_url_from_admin(admin_url: str, password: str | None, *, role: str = APP_ROLE) -> str:
    """Same server and database as the admin URL, connecting as ``role`` (the application role by default)."""
    parsed = make_url(admin_url).set(username=role, password=password)
    return parsed.render_as_string(hide_password=False)


class MissingSetting(RuntimeError):
    """A setting a command needs is absent; the message names the variable."""


_ROLE_URLS = {
    APP_ROLE: ("app_database_url", "app_database_password", "RCM_APP_DATABASE_URL"),
    CONTROL_ROLE: ("control_database_url", "control_database_password", "RCM_CONTROL_DATABASE_URL"),
    AUDIT_ROLE: ("audit_database_url", "audit_database_password", "RCM_AUDIT_DATABASE_URL"),
}


def _role_url(settings: Settings, role: str) -> str:
    url_field, password_field, variable = _ROLE_URLS[role]
    url: SecretStr | None = getattr(settings, url_field)
    password: SecretStr | None = getattr(settings, password_field)
    if url is not None:
        return url.get_secret_value()
    if settings.database_url is None:
        raise MissingSetting(f"{variable} must be set (or RCM_DATABASE_URL, from which it is derived)")
    secret = password.get_secret_value() if password is not None else None
    return app_url_from_admin(settings.database_url.get_secret_value(), secret, role=role)


def app_database_url(settings: Settings) -> str:
    """The ``rcm_app`` URL: RCM_APP_DATABASE_URL, else derived from RCM_DATABASE_URL."""
    return _role_url(settings, APP_ROLE)


def control_database_url(settings: Settings) -> str:
    """The ``rcm_control`` URL: RCM_CONTROL_DATABASE_URL, else derived from RCM_DATABASE_URL."""
    return _role_url(settings, CONTROL_ROLE)


def audit_database_url(settings: Settings) -> str:
    """The audit chainer's URL (role ``rcm_audit``): RCM_AUDIT_DATABASE_URL, else derived likewise."""
    return _role_url(settings, AUDIT_ROLE)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
