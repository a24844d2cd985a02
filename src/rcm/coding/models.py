"""Coding versions (append-only), queries to the practice, fee schedules and QA samples."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
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

from rcm.encounters.models import Encounter  # noqa: F401 - the rcm.encounter table versions refer to
from rcm.kit.models import Base, EnumText, TenantOwned, utcnow
from rcm.workqueue.models import WorkItem  # noqa: F401 - the rcm.work_item table versions refer to


class VersionState(enum.StrEnum):
    DRAFT = "draft"  # saved by the coder holding the item; the latest one is what they resume from
    COMPLETED = "completed"  # the coding the claim is built from
    REVIEW = "review"  # a QA reviewer's blind re-coding of a completed version


class QueryStatus(enum.StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


class SampleStatus(enum.StrEnum):
    OPEN = "open"
    REVIEWED = "reviewed"


def _check(column: str, values: type[enum.StrEnum]) -> CheckConstraint:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


def _item_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "work_item_id"], ["rcm.work_item.tenant_id", "rcm.work_item.id"]
    )


def _encounter_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "encounter_id"], ["rcm.encounter.tenant_id", "rcm.encounter.id"]
    )


class CodingVersion(TenantOwned, Base):
    """One saved coding of an item, never changed: the item's coding history is its versions, numbered."""

    __tablename__ = "coding_version"
    __table_args__ = (
        _item_fk(),
        _encounter_fk(),
        UniqueConstraint("tenant_id", "work_item_id", "number"),
        _check("state", VersionState),
    )

    work_item_id: Mapped[uuid.UUID]
    encounter_id: Mapped[uuid.UUID]
    number: Mapped[int]
    state: Mapped[VersionState] = mapped_column(EnumText(VersionState))
    coder: Mapped[str] = mapped_column(Text)  # principal subject of who saved it


def _version_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["tenant_id", "coding_version_id"], ["rcm.coding_version.tenant_id", "rcm.coding_version.id"]
    )


class CodingDiagnosis(TenantOwned, Base):
    __tablename__ = "coding_diagnosis"
    __table_args__ = (_version_fk(), UniqueConstraint("tenant_id", "coding_version_id", "sequence"))

    coding_version_id: Mapped[uuid.UUID]
    sequence: Mapped[int] = mapped_column(SmallInteger)  # 1-12: what the lines' pointers point at
    code: Mapped[str] = mapped_column(Text)  # ICD-10-CM without the dot


class CodingLine(TenantOwned, Base):
    __tablename__ = "coding_line"
    __table_args__ = (_version_fk(), UniqueConstraint("tenant_id", "coding_version_id", "line_number"))

    coding_version_id: Mapped[uuid.UUID]
    line_number: Mapped[int] = mapped_column(SmallInteger)
    procedure_code: Mapped[str] = mapped_column(Text)  # CPT or HCPCS Level II
    modifiers: Mapped[list[str]] = mapped_column(ARRAY(Text))
    units: Mapped[int]
    charge_cents: Mapped[int] = mapped_column(BigInteger)
    diagnosis_pointers: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))


class CodingQuery(TenantOwned, Base):
    """A coder's question to the practice about an encounter, and the practice's answer (both PHI)."""

    __tablename__ = "coding_query"
    __table_args__ = (
        _item_fk(),
        _encounter_fk(),
        _check("status", QueryStatus),
        Index("ix_coding_query_open", "tenant_id", "status", "created_at"),
    )
    __phi_columns__: ClassVar[tuple[str, ...]] = ("question", "answer")

    work_item_id: Mapped[uuid.UUID]
    encounter_id: Mapped[uuid.UUID]
    asked_by: Mapped[str] = mapped_column(Text)
    question: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[QueryStatus] = mapped_column(EnumText(QueryStatus))
    answer: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(nullable=True)


class FeeScheduleEntry(Base):
    """A practice's charge per unit for a code ('' modifier: any modifier without an entry of its own)."""

    __tablename__ = "fee_schedule"
    __table_args__ = (CheckConstraint("charge_cents >= 0", name="charge"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    modifier: Mapped[str] = mapped_column(Text, primary_key=True, server_default="")
    charge_cents: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class QaSample(TenantOwned, Base):
    """A completed coding picked for QA; a reviewer re-codes it blind and the agreement is scored."""

    __tablename__ = "qa_sample"
    __table_args__ = (
        _item_fk(),
        ForeignKeyConstraint(
            ["tenant_id", "original_version_id"], ["rcm.coding_version.tenant_id", "rcm.coding_version.id"]
        ),
        ForeignKeyConstraint(
            ["tenant_id", "review_version_id"], ["rcm.coding_version.tenant_id", "rcm.coding_version.id"]
        ),
        _check("status", SampleStatus),
        Index("uq_qa_sample_tenant_id_original_version_id", "tenant_id", "original_version_id", unique=True),
    )

    work_item_id: Mapped[uuid.UUID]
    encounter_id: Mapped[uuid.UUID]
    original_version_id: Mapped[uuid.UUID]
    coder: Mapped[str] = mapped_column(Text)  # who completed the original
    sampled_by: Mapped[str] = mapped_column(Text)
    status: Mapped[SampleStatus] = mapped_column(EnumText(SampleStatus))
    reviewer: Mapped[str | None] = mapped_column(Text, nullable=True)
    review_version_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Agreement: codes both gave, over codes either gave (diagnoses; procedure lines by code and modifiers).
    dx_agreed: Mapped[int | None] = mapped_column(nullable=True)
    dx_total: Mapped[int | None] = mapped_column(nullable=True)
    px_agreed: Mapped[int | None] = mapped_column(nullable=True)
    px_total: Mapped[int | None] = mapped_column(nullable=True)
