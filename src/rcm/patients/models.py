"""Patient and coverage rows. PHI columns hold AES-256-GCM ciphertext (bytea); lookups use blind indexes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import ForeignKeyConstraint, Index, LargeBinary, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, TenantOwned, utcnow


class Patient(TenantOwned, Base):
    __tablename__ = "patient"
    __table_args__ = (
        # One patient per MRN in a practice: intake matches on it instead of creating a duplicate.
        UniqueConstraint("tenant_id", "mrn_bidx"),
        Index("ix_patient_name_dob", "tenant_id", "name_dob_bidx"),
    )
    __phi_columns__: ClassVar[tuple[str, ...]] = (
        "mrn",
        "given_name",
        "family_name",
        "birth_date",
        "address",
        "phone",
    )

    mrn: Mapped[bytes] = mapped_column(LargeBinary)
    given_name: Mapped[bytes] = mapped_column(LargeBinary)
    family_name: Mapped[bytes] = mapped_column(LargeBinary)
    birth_date: Mapped[bytes] = mapped_column(LargeBinary)
    address: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # JSON, encrypted whole
    phone: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Administrative sex is not one of HIPAA's identifiers and scrub edits need it (age/sex conflicts).
    sex: Mapped[str] = mapped_column(Text)
    mrn_bidx: Mapped[bytes] = mapped_column(LargeBinary)
    name_dob_bidx: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class Coverage(TenantOwned, Base):
    __tablename__ = "coverage"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["rcm.patient.tenant_id", "rcm.patient.id"]),
        Index("ix_coverage_member", "tenant_id", "member_id_bidx"),
        Index("ix_coverage_patient", "tenant_id", "patient_id"),
    )
    __phi_columns__: ClassVar[tuple[str, ...]] = (
        "member_id",
        "group_number",
        "subscriber_family_name",
        "subscriber_given_name",
        "subscriber_middle_name",
        "subscriber_birth_date",
        "subscriber_address",
    )

    patient_id: Mapped[uuid.UUID]
    payer_id: Mapped[str] = mapped_column(Text)  # the payer's code from the tenant manifest
    member_id: Mapped[bytes] = mapped_column(LargeBinary)
    group_number: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    member_id_bidx: Mapped[bytes] = mapped_column(LargeBinary)
    relationship: Mapped[str] = mapped_column(Text)  # subscriber relationship: self, spouse, child, other
    priority: Mapped[str] = mapped_column(Text)  # primary, secondary, tertiary
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    # The subscriber when not the patient (837P 2010BA, the patient in 2000C): none of it on a self coverage.
    subscriber_family_name: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    subscriber_given_name: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    subscriber_middle_name: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    subscriber_birth_date: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    subscriber_address: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # JSON, whole
    subscriber_sex: Mapped[str | None] = mapped_column(Text, nullable=True)  # plain, as the patient's
