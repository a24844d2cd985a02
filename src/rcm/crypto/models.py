"""The ``data_key`` table: wrapped per-tenant data keys (see migration 0002_crypto)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, LargeBinary, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, utcnow


class KeyPurpose(StrEnum):
    PHI = "phi"
    BLIND_INDEX = "blind_index"


class KeyState(StrEnum):
    ACTIVE = "active"  # encrypts new values (at most one per tenant and purpose)
    DECRYPT_ONLY = "decrypt_only"  # replaced by a rotation; rows may still use it until re-encrypted
    RETIRED = "retired"  # no row uses it; kept so restored backups stay readable
    DESTROYED = "destroyed"  # crypto-shredded: wrapped material overwritten with NULL


class DataKey(Base):
    __tablename__ = "data_key"
    # At most one key encrypts at a time per tenant and purpose; concurrent first requests cannot both win.
    __table_args__ = (
        Index(
            "uq_data_key_one_active",
            "tenant_id",
            "purpose",
            unique=True,
            postgresql_where=text("state = 'active'"),
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    purpose: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    kek_id: Mapped[str] = mapped_column(Text)
    wrapped: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)

    def __repr__(self) -> str:
        # Never show wrapped material, even though it is useless without the KEK.
        return f"DataKey(tenant_id={self.tenant_id}, purpose={self.purpose}, version={self.version})"
