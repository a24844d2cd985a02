"""Denials, appeals, their attachments and a practice's appeal-letter templates: tenant-owned, RLS forced
(DDL, policies and grants frozen in migration 0034_denials).

A denial holds codes, dates and amounts only. An appeal's argument is the biller's words about the
patient's care: PHI, sealed per field (``__phi_columns__``); its letter and attachments are encrypted blobs
(``rcm.blobs``), kept without file names."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from rcm.blobs.models import Blob  # noqa: F401 - the rcm.blob table letters and attachments refer to
from rcm.claims.models import Claim  # noqa: F401 - the rcm.claim table denials and appeals refer to
from rcm.denials.categories import DenialCategory
from rcm.interchanges.models import X12File  # noqa: F401 - the rcm.x12_file table a denial came from
from rcm.kit.models import Base, EnumText, TenantOwned, enum_check, utcnow


class DenialStatus(enum.StrEnum):
    OPEN = "open"  # to work: correct and resubmit, or appeal, before the deadline
    APPEALED = "appealed"  # an appeal covering it was submitted
    CORRECTED = "corrected"  # a replacement claim (frequency 7) was sent instead
    OVERTURNED = "overturned"  # the appeal's outcome
    UPHELD = "upheld"
    PARTIAL = "partial"
    CLOSED = "closed"  # nothing more to do (written off, or the claim closed)


class AppealStatus(enum.StrEnum):
    DRAFTED = "drafted"  # the letter is rendered, not yet sent
    SUBMITTED = "submitted"
    DECIDED = "decided"


class SubmissionMethod(enum.StrEnum):
    MAIL = "mail"
    FAX = "fax"
    PORTAL = "portal"
    ELECTRONIC = "electronic"


class AppealOutcome(enum.StrEnum):
    OVERTURNED = "overturned"
    UPHELD = "upheld"
    PARTIAL = "partial"


class AppealTemplate(TenantOwned, Base):
    """A practice's letter template (sandboxed Jinja text; no PHI: the claim's data fills it at render)."""

    __tablename__ = "appeal_template"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        CheckConstraint("name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'", name="name"),
        CheckConstraint("length(body) BETWEEN 1 AND 20000", name="body"),
    )

    name: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class Appeal(TenantOwned, Base):
    __tablename__ = "appeal"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        ForeignKeyConstraint(["tenant_id", "letter_blob_id"], ["rcm.blob.tenant_id", "rcm.blob.id"]),
        enum_check("status", AppealStatus),
        enum_check("submission_method", SubmissionMethod),
        enum_check("outcome", AppealOutcome),
        CheckConstraint("recovered_cents >= 0", name="recovered_cents"),
        CheckConstraint("(status = 'drafted') = (submitted_on IS NULL)", name="submitted"),
        CheckConstraint("(status = 'decided') = (outcome IS NOT NULL)", name="decided"),
        Index("ix_appeal_claim", "tenant_id", "claim_id", "created_at"),
    )
    __phi_columns__: ClassVar[tuple[str, ...]] = ("argument",)

    claim_id: Mapped[uuid.UUID]
    template_name: Mapped[str] = mapped_column(Text)
    argument: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    letter_blob_id: Mapped[uuid.UUID]
    created_by: Mapped[str] = mapped_column(Text)  # the biller's principal subject
    status: Mapped[AppealStatus] = mapped_column(EnumText(AppealStatus))
    submitted_on: Mapped[date | None]
    submission_method: Mapped[SubmissionMethod | None] = mapped_column(
        EnumText(SubmissionMethod), nullable=True
    )
    submission_reference: Mapped[str | None] = mapped_column(Text, nullable=True)  # the payer's case number
    outcome: Mapped[AppealOutcome | None] = mapped_column(EnumText(AppealOutcome), nullable=True)
    recovered_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    decided_on: Mapped[date | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class AppealAttachment(TenantOwned, Base):
    """A file sent with an appeal (PDF, PNG, JPEG, TIFF): an encrypted blob, no file name kept."""

    __tablename__ = "appeal_attachment"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "appeal_id"], ["rcm.appeal.tenant_id", "rcm.appeal.id"]),
        ForeignKeyConstraint(["tenant_id", "blob_id"], ["rcm.blob.tenant_id", "rcm.blob.id"]),
        Index("ix_appeal_attachment", "tenant_id", "appeal_id", "created_at"),
    )

    appeal_id: Mapped[uuid.UUID]
    blob_id: Mapped[uuid.UUID]
    content_type: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[bytes] = mapped_column(LargeBinary)


class Denial(TenantOwned, Base):
    """A claim (``line_number`` None) or one of its lines that an 835 denied, wholly or partly."""

    __tablename__ = "denial"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        ForeignKeyConstraint(["tenant_id", "x12_file_id"], ["rcm.x12_file.tenant_id", "rcm.x12_file.id"]),
        ForeignKeyConstraint(["tenant_id", "appeal_id"], ["rcm.appeal.tenant_id", "rcm.appeal.id"]),
        ForeignKeyConstraint(["tenant_id", "replacement_claim_id"], ["rcm.claim.tenant_id", "rcm.claim.id"]),
        enum_check("category", DenialCategory),
        enum_check("status", DenialStatus),
        CheckConstraint("group_code IN ('CO', 'OA', 'PI')", name="group_code"),
        CheckConstraint("denied_cents >= 0", name="denied_cents"),
        CheckConstraint("line_number BETWEEN 1 AND 999", name="line_number"),
        Index("ix_denial_deadline", "tenant_id", "appeal_deadline", "id"),
        Index("ix_denial_claim", "tenant_id", "claim_id"),
        Index("ix_denial_remitted", "tenant_id", "remitted_on"),
    )

    claim_id: Mapped[uuid.UUID]
    x12_file_id: Mapped[uuid.UUID | None]  # the 835 that denied it
    payer_id: Mapped[str] = mapped_column(Text)
    line_number: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)  # the SVC's position
    procedure_code: Mapped[str | None] = mapped_column(Text, nullable=True)  # SVC01-2 (CPT/HCPCS)
    group_code: Mapped[str | None] = mapped_column(Text, nullable=True)  # CAS01 of the main reason
    carc: Mapped[str | None] = mapped_column(Text, nullable=True)  # the main reason (most denied)
    adjustments: Mapped[list[str]] = mapped_column(ARRAY(Text))  # every denying CAS: "CO-50"
    rarcs: Mapped[list[str]] = mapped_column(ARRAY(Text))  # LQ*HE, MOA, MIA remark codes
    category: Mapped[DenialCategory] = mapped_column(EnumText(DenialCategory))
    denied_cents: Mapped[int] = mapped_column(BigInteger)
    remitted_on: Mapped[date]  # BPR16: the date of the payer's determination
    appeal_deadline: Mapped[date]  # remitted_on + the payer's appeal days
    status: Mapped[DenialStatus] = mapped_column(EnumText(DenialStatus))
    appeal_id: Mapped[uuid.UUID | None]
    replacement_claim_id: Mapped[uuid.UUID | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)
