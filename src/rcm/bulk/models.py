from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, EnumText, TenantOwned, utcnow


class BulkFormat(enum.StrEnum):
    NDJSON = "ndjson"
    CSV = "csv"


class BulkStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # the file itself could not be read (not a rejected line: those are per line)


class LineOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class BulkIntake(TenantOwned, Base):
    """One uploaded file and the job reading it. ``cursor_line`` is the last line whose outcome is committed:
    a resumed job starts after it."""

    __tablename__ = "bulk_intake"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "blob_id"], ["rcm.blob.tenant_id", "rcm.blob.id"]),
        # The same file (by content) makes one job per practice: a resubmission answers the first job.
        UniqueConstraint("tenant_id", "file_sha256"),
        Index("ix_bulk_intake_list", "tenant_id", "created_at", "id"),
        CheckConstraint("format IN ('ndjson', 'csv')", name="format"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
    )

    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)
    blob_id: Mapped[uuid.UUID]
    file_sha256: Mapped[bytes] = mapped_column(LargeBinary)
    format: Mapped[BulkFormat] = mapped_column(EnumText(BulkFormat))
    status: Mapped[BulkStatus] = mapped_column(EnumText(BulkStatus))
    lines_read: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    cursor_line: Mapped[int] = mapped_column(Integer)
    # Who asked (the job acts as them, and its audit events say so). Ids only.
    submitted_by_kind: Mapped[str] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(Text)
    submitted_client_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    submitted_user_id: Mapped[uuid.UUID | None]
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)  # a fixed reason, never file content


class BulkIntakeLine(Base):
    """The outcome of one line, written with the line's records and the job's cursor in one transaction."""

    __tablename__ = "bulk_intake_line"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "job_id"], ["rcm.bulk_intake.tenant_id", "rcm.bulk_intake.id"]),
        CheckConstraint("outcome IN ('accepted', 'rejected')", name="outcome"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    outcome: Mapped[LineOutcome] = mapped_column(EnumText(LineOutcome))
    encounter_id: Mapped[uuid.UUID | None]
    # [{"pointer": ..., "detail": ...}]: pointers and fixed messages, never the line's values.
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB, nullable=True)
