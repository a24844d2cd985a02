from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, EnumText, utcnow
from rcm.tenancy.manifest import ManifestColumn, TenantManifest
from rcm.tenancy.vocabulary import TenantStatus


class Tenant(Base):
    """Registry row of a client practice; global (no tenant context needed to resolve a slug)."""

    __tablename__ = "tenant"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    slug: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    status: Mapped[TenantStatus] = mapped_column(
        EnumText(TenantStatus),
        default=TenantStatus.ACTIVE,
        server_default=TenantStatus.ACTIVE.value,
    )
    # Written only through rcm.tenancy.manifest.validate_manifest; read back as the typed model.
    manifest: Mapped[TenantManifest] = mapped_column(ManifestColumn, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class AppUser(Base):
    """A person who logs in through an OIDC issuer. Roles are ours, not the issuer's."""

    __tablename__ = "app_user"
    # An OIDC identity is its issuer and subject together: one person per pair.
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    issuer: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text, unique=True)
    display_name: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # A practice owner sees one tenant; staff have none here (they are assigned through staff_assignment).
    home_tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenant.id"), nullable=True)
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class StaffAssignment(Base):
    __tablename__ = "staff_assignment"

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    assigned_by: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # The person reviews this practice's QA samples (a coder or supervisor, marked by a supervisor or admin).
    qa_reviewer: Mapped[bool] = mapped_column(default=False, server_default="false")
