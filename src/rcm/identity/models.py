"""Tables of the identity package: API clients, JWT signing keys, break-glass grants, used assertion ids."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, EnumText, TenantOwned, utcnow


class ApiClientStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"  # final: its tokens stop working within the status cache's seconds


class AuthMethod(enum.StrEnum):
    """How an API client authenticates at the token endpoint (RFC 7591 names)."""

    CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105 (a method name, not a secret)
    PRIVATE_KEY_JWT = "private_key_jwt"


class SigningKeyState(enum.StrEnum):
    ACTIVE = "active"  # signs new tokens (one at a time)
    PUBLISHED = "published"  # no longer signs, still in the JWKS until its last token expires
    RETIRED = "retired"  # gone from the JWKS


class ApiClient(TenantOwned, Base):
    """A practice system's OAuth2 client. Tenant-owned; the token endpoint finds it by ``client_id`` through
    the ``client_lookup`` policy before any tenant context exists."""

    __tablename__ = "api_client"

    client_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    auth_method: Mapped[AuthMethod] = mapped_column(EnumText(AuthMethod))
    # SHA-256 of a 256-bit random secret: the secret itself is shown once and never stored.
    secret_hash: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[ApiClientStatus] = mapped_column(
        EnumText(ApiClientStatus), default=ApiClientStatus.ACTIVE, server_default=ApiClientStatus.ACTIVE.value
    )
    rotated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class SigningKey(Base):
    """A key that signs our access tokens. Global; the private half is wrapped under the KEK provider."""

    __tablename__ = "signing_key"
    # At most one key signs at a time; concurrent first starts race on this index and one wins.
    __table_args__ = (
        Index("uq_signing_key_one_active", "state", unique=True, postgresql_where=text("state = 'active'")),
    )

    kid: Mapped[str] = mapped_column(Text, primary_key=True)
    alg: Mapped[str] = mapped_column(Text)
    kek_id: Mapped[str] = mapped_column(Text)
    wrapped_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # active (signs) -> published (no longer signs, still in the JWKS) -> retired (gone from the JWKS)
    state: Mapped[SigningKeyState] = mapped_column(EnumText(SigningKeyState))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # Set when the key stops signing: the last token it signed expires before this instant.
    published_until: Mapped[datetime | None] = mapped_column(nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(nullable=True)


class BreakGlassCategory(enum.StrEnum):
    """Why the glass was broken: the classes of emergency a HIPAA emergency-access procedure names."""

    PATIENT_SAFETY = "patient_safety"  # care waits on billing data (e.g. coverage for a procedure today)
    SYSTEM_OUTAGE = "system_outage"  # the assigned staff cannot reach the practice's data
    COVERAGE_EMERGENCY = "coverage_emergency"  # eligibility or authorisation needed urgently
    PAYER_DEADLINE = "payer_deadline"  # a timely-filing or appeal deadline would otherwise be missed
    LEGAL_REQUEST = "legal_request"  # subpoena, court order, regulator
    OTHER = "other"  # the reason text must say what (grants from before categories are "other")


class BreakGlassStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for a second approver; grants no access
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"
    LAPSED = "lapsed"  # pending, and nobody approved it in time; grants no access


class BreakGlassGrant(TenantOwned, Base):
    """Emergency access of one person to one tenant: requested with a category and a reason, possibly
    approved by a second person, time-boxed from the moment it starts, revocable.

    ``starts_at``/``expires_at`` are NULL while the grant waits for approval; access exists only while
    ``starts_at <= now < expires_at`` and ``revoked_at`` is NULL.
    """

    __tablename__ = "break_glass_grant"
    __table_args__ = (
        # A person's grants in a tenant (is there an open one?), and across tenants (the per-person limit).
        Index("ix_break_glass_grant_user", "tenant_id", "user_id", "expires_at"),
        Index("ix_break_glass_grant_requests", "user_id", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("app_user.id"))
    category: Mapped[BreakGlassCategory] = mapped_column(EnumText(BreakGlassCategory))
    reason: Mapped[str] = mapped_column(Text)
    minutes: Mapped[int] = mapped_column()
    requires_approval: Mapped[bool] = mapped_column(default=False, server_default="false")
    starts_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    approved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class UsedClientAssertion(Base):
    """``jti`` of accepted private_key_jwt client assertions, kept until exp + leeway (replay guard)."""

    __tablename__ = "used_client_assertion"

    client_id: Mapped[str] = mapped_column(Text, primary_key=True)
    jti: Mapped[str] = mapped_column(Text, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column()
