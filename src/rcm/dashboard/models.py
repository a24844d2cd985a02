"""A person's saved report views: tenant-owned, RLS forced (DDL, policy and grants frozen in migration
0045_saved_views).

A view is a report's name and its parameters (a flat object of allow-listed strings: grain, grouping,
period...), saved by one person under a name of their choosing. Parameters are report settings, never
patient data.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, EnumText, TenantOwned, enum_check, utcnow


class ReportName(enum.StrEnum):
    """What a saved view reopens: a page of the dashboard and the report behind it."""

    DASHBOARD = "dashboard"  # the owner's overview: KPIs, cash flow, AR aging, forecast
    CASH_FLOW = "cash_flow"
    AR_AGING = "ar_aging"
    KPIS = "kpis"
    CLAIMS = "claims"  # a drill-down list


class SavedView(TenantOwned, Base):
    __tablename__ = "saved_view"
    __table_args__ = (
        # One view per name per person in a practice: saving under a taken name replaces it.
        UniqueConstraint("tenant_id", "owner_subject", "name"),
        enum_check("report", ReportName),
        CheckConstraint("length(name) BETWEEN 1 AND 80", name="name"),
        CheckConstraint("jsonb_typeof(parameters) = 'object'", name="parameters"),
        Index("ix_saved_view_owner", "tenant_id", "owner_subject", "updated_at"),
    )

    owner_subject: Mapped[str] = mapped_column(Text)  # the person's principal subject (the token's sub)
    name: Mapped[str] = mapped_column(Text)
    report: Mapped[ReportName] = mapped_column(EnumText(ReportName))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)
