from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import ClassVar

from sqlalchemy import (
    BigInteger,
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

from rcm.kit.models import Base, EnumText, TenantOwned, utcnow
from rcm.providers.models import Provider  # noqa: F401 - the rcm.provider table encounters refer to
from rcm.tenancy.vocabulary import ClaimType


class Encounter(TenantOwned, Base):
    __tablename__ = "encounter"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "patient_id"], ["rcm.patient.tenant_id", "rcm.patient.id"]),
        ForeignKeyConstraint(["tenant_id", "coverage_id"], ["rcm.coverage.tenant_id", "rcm.coverage.id"]),
        ForeignKeyConstraint(
            ["tenant_id", "rendering_provider_id"], ["rcm.provider.tenant_id", "rcm.provider.id"]
        ),
        ForeignKeyConstraint(
            ["tenant_id", "billing_provider_id"], ["rcm.provider.tenant_id", "rcm.provider.id"]
        ),
        # The practice's own id names one encounter: a resubmission is recognised, not duplicated.
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_encounter_list", "tenant_id", "created_at", "id"),
        Index("ix_encounter_patient", "tenant_id", "patient_id"),
    )
    __phi_columns__: ClassVar[tuple[str, ...]] = ("documentation",)

    external_id: Mapped[str] = mapped_column(Text)  # the practice's own id, unique per tenant
    patient_id: Mapped[uuid.UUID]
    coverage_id: Mapped[uuid.UUID | None]
    rendering_provider_id: Mapped[uuid.UUID]
    billing_provider_id: Mapped[uuid.UUID]
    service_date: Mapped[date]
    place_of_service: Mapped[str] = mapped_column(Text)
    documentation: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(Text)
    total_charge_cents: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(Text)  # json | fhir
    # 837P 2310A (NM1*DN): the referring provider, when the payer wants one. Not PHI.
    referring_npi: Mapped[str | None] = mapped_column(Text, nullable=True)
    referring_family_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    referring_given_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    referring_taxonomy: Mapped[str | None] = mapped_column(Text, nullable=True)
    # 837P 2310C (NM1*77, N3, N4): where the service was given, when not at the billing provider's address.
    facility_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    facility_npi: Mapped[str | None] = mapped_column(Text, nullable=True)
    facility_line1: Mapped[str | None] = mapped_column(Text, nullable=True)
    facility_line2: Mapped[str | None] = mapped_column(Text, nullable=True)
    facility_city: Mapped[str | None] = mapped_column(Text, nullable=True)
    facility_state: Mapped[str | None] = mapped_column(Text, nullable=True)
    facility_postal_code: Mapped[str | None] = mapped_column(Text, nullable=True)
    prior_authorization: Mapped[str | None] = mapped_column(Text, nullable=True)  # 2300 REF*G1
    # 837P or 837I: the practice's manifest ``claim_type`` unless the encounter named its own.
    claim_type: Mapped[ClaimType] = mapped_column(
        EnumText(ClaimType), default=ClaimType.PROFESSIONAL, server_default=ClaimType.PROFESSIONAL.value
    )
    # 837I loop 2300 (institutional encounters only; codes and dates, in clear as the service date is).
    type_of_bill: Mapped[str | None] = mapped_column(Text, nullable=True)  # CLM05-1 + CLM05-3: e.g. 131
    statement_start: Mapped[date | None]  # DTP*434
    statement_end: Mapped[date | None]
    admission_date: Mapped[date | None]  # DTP*435
    admission_hour: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    admission_type: Mapped[str | None] = mapped_column(Text, nullable=True)  # CL101
    admission_source: Mapped[str | None] = mapped_column(Text, nullable=True)  # CL102
    patient_status: Mapped[str | None] = mapped_column(Text, nullable=True)  # CL103
    attending_npi: Mapped[str | None] = mapped_column(Text, nullable=True)  # 2310A NM1*71
    attending_family_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    attending_given_name: Mapped[str | None] = mapped_column(Text, nullable=True)
    admitting_diagnosis: Mapped[str | None] = mapped_column(Text, nullable=True)  # HI*ABJ, without the dot
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), onupdate=utcnow)


class Diagnosis(TenantOwned, Base):
    __tablename__ = "diagnosis"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "encounter_id"], ["rcm.encounter.tenant_id", "rcm.encounter.id"]),
        UniqueConstraint("tenant_id", "encounter_id", "sequence"),
    )

    encounter_id: Mapped[uuid.UUID]
    sequence: Mapped[int] = mapped_column(SmallInteger)  # 1-12, the order of HI01-HI12 on the 837P
    code: Mapped[str] = mapped_column(Text)  # ICD-10-CM, stored without the dot


class ChargeLine(TenantOwned, Base):
    __tablename__ = "charge_line"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "encounter_id"], ["rcm.encounter.tenant_id", "rcm.encounter.id"]),
        UniqueConstraint("tenant_id", "encounter_id", "line_number"),
    )

    encounter_id: Mapped[uuid.UUID]
    line_number: Mapped[int] = mapped_column(SmallInteger)
    procedure_code: Mapped[str] = mapped_column(Text)  # CPT or HCPCS Level II
    modifiers: Mapped[list[str]] = mapped_column(ARRAY(Text))
    units: Mapped[int]
    charge_cents: Mapped[int] = mapped_column(BigInteger)
    diagnosis_pointers: Mapped[list[int]] = mapped_column(ARRAY(SmallInteger))  # SV107: 1-4 pointers
    service_date: Mapped[date | None]
    revenue_code: Mapped[str | None] = mapped_column(Text, nullable=True)  # 837I SV201 (NUBC), four digits


class EncounterEvent(TenantOwned, Base):
    """Status history of an encounter: one row per transition, never updated."""

    __tablename__ = "encounter_event"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "encounter_id"], ["rcm.encounter.tenant_id", "rcm.encounter.id"]),
        Index("ix_encounter_event", "tenant_id", "encounter_id", "created_at"),
    )

    encounter_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)  # a fixed reason code, never free text


class EncounterDocument(TenantOwned, Base):
    """A document (PDF, image) attached to an encounter; its bytes are an encrypted blob (``rcm.blobs``).

    No file name is kept: a name like ``smith_john_mri.pdf`` is PHI, and nothing needs it.
    """

    __tablename__ = "encounter_document"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "encounter_id"], ["rcm.encounter.tenant_id", "rcm.encounter.id"]),
        ForeignKeyConstraint(["tenant_id", "blob_id"], ["rcm.blob.tenant_id", "rcm.blob.id"]),
        Index("ix_encounter_document", "tenant_id", "encounter_id", "created_at"),
    )

    encounter_id: Mapped[uuid.UUID]
    blob_id: Mapped[uuid.UUID]
    content_type: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[bytes] = mapped_column(LargeBinary)
