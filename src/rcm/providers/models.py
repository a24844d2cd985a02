from __future__ import annotations

from sqlalchemy import Index, Text, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, TenantOwned


class Provider(TenantOwned, Base):
    """A rendering or billing provider of the practice (no PHI)."""

    __tablename__ = "provider"
    # Intake looks a name up before a mistyped NPI would make a second provider of it.
    __table_args__ = (
        UniqueConstraint("tenant_id", "npi"),
        Index("provider_name_idx", "tenant_id", text("lower(name)")),
    )

    npi: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)  # individual | organization
    taxonomy: Mapped[str | None] = mapped_column(Text, nullable=True)
    # NPIs failing their check digit are accepted at intake and flagged here for the scrub (and for people).
    npi_valid: Mapped[bool] = mapped_column(default=True, server_default=true())
