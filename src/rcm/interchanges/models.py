"""``rcm.x12_file``: one interchange we sent or received (see migration 0021_x12_files). The bytes are a blob,
encrypted with the tenant's keys; the row holds only what the envelope says in clear and what it produced."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from rcm.blobs.models import Blob  # noqa: F401 - the rcm.blob table files refer to
from rcm.claims.models import Claim, SubmissionBatch  # noqa: F401 - the tables files and links refer to
from rcm.kit.models import Base, EnumText, TenantOwned, utcnow


class Direction(enum.StrEnum):
    OUTBOUND = "outbound"  # we sent it (837, 270, 276)
    INBOUND = "inbound"  # a payer or clearinghouse sent it (999, 277CA, 835, 271, 277)


class FileStatus(enum.StrEnum):
    KEPT = "kept"  # stored, not yet (or never to be) processed
    PROCESSED = "processed"  # what it says has been applied
    REFUSED = "refused"  # not readable X12, or nothing of ours: ``error`` says where, never what


KINDS = ("837P", "837I", "835", "999", "277CA", "270", "271", "276", "277", "unknown")


class X12File(TenantOwned, Base):
    __tablename__ = "x12_file"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "blob_id"], ["rcm.blob.tenant_id", "rcm.blob.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "submission_batch_id"],
            ["rcm.submission_batch.tenant_id", "rcm.submission_batch.id"],
        ),
        UniqueConstraint("tenant_id", "direction", "sha256"),
        CheckConstraint("direction IN ('outbound', 'inbound')", name="direction"),
        CheckConstraint("kind IN ({})".format(", ".join(f"'{k}'" for k in KINDS)), name="kind"),
        CheckConstraint("status IN ('kept', 'processed', 'refused')", name="status"),
        CheckConstraint("size >= 0", name="size"),
        Index("ix_x12_file_batch", "tenant_id", "submission_batch_id"),
        Index("ix_x12_file_created", "tenant_id", "created_at", "id"),
    )

    direction: Mapped[Direction] = mapped_column(EnumText(Direction))
    kind: Mapped[str] = mapped_column(Text)
    blob_id: Mapped[uuid.UUID]
    sha256: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    interchange_control_number: Mapped[int | None] = mapped_column(Integer, nullable=True)  # ISA13
    sender_id: Mapped[str | None] = mapped_column(Text, nullable=True)  # ISA06
    receiver_id: Mapped[str | None] = mapped_column(Text, nullable=True)  # ISA08
    connector: Mapped[str | None] = mapped_column(Text, nullable=True)
    submission_batch_id: Mapped[uuid.UUID | None]
    status: Mapped[FileStatus] = mapped_column(EnumText(FileStatus))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    processed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class X12FileLink(TenantOwned, Base):
    """What a kept interchange is about (migration 0032_x12_links): a submission batch (the 837 that carried
    it, or the 999/277CA/835 answering it), a claim a received file matched, or an 835's check or EFT trace
    number (TRN02). Exactly one per row; appended, never changed. No PHI."""

    __tablename__ = "x12_file_link"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "x12_file_id"], ["rcm.x12_file.tenant_id", "rcm.x12_file.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "submission_batch_id"],
            ["rcm.submission_batch.tenant_id", "rcm.submission_batch.id"],
        ),
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        CheckConstraint(
            "num_nonnulls(submission_batch_id, claim_id, check_trace_number) = 1", name="one_target"
        ),
        CheckConstraint(
            "check_trace_number IS NULL OR length(check_trace_number) BETWEEN 1 AND 50",
            name="check_trace_number",
        ),
        Index(
            "uq_x12_file_link_batch",
            "tenant_id",
            "submission_batch_id",
            "x12_file_id",
            unique=True,
            postgresql_where=text("submission_batch_id IS NOT NULL"),
        ),
        Index(
            "uq_x12_file_link_claim",
            "tenant_id",
            "claim_id",
            "x12_file_id",
            unique=True,
            postgresql_where=text("claim_id IS NOT NULL"),
        ),
        Index(
            "uq_x12_file_link_trace",
            "tenant_id",
            "check_trace_number",
            "x12_file_id",
            unique=True,
            postgresql_where=text("check_trace_number IS NOT NULL"),
        ),
        Index("ix_x12_file_link_file", "tenant_id", "x12_file_id"),
    )

    x12_file_id: Mapped[uuid.UUID]
    submission_batch_id: Mapped[uuid.UUID | None]
    claim_id: Mapped[uuid.UUID | None]
    check_trace_number: Mapped[str | None] = mapped_column(Text, nullable=True)


class ResponseCursor(TenantOwned, Base):
    """Where a practice's fetch of payer responses stopped, per connector and endpoint (migration 0024):
    the connector's opaque cursor, given back on the next ``fetch_responses``. No PHI."""

    __tablename__ = "response_cursor"
    __table_args__ = (UniqueConstraint("tenant_id", "connector", "endpoint"),)

    connector: Mapped[str] = mapped_column(Text)
    endpoint: Mapped[str] = mapped_column(Text)
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    fetched_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
