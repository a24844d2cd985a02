"""The link from a practice's FHIR resource identifiers to the records they became."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import LargeBinary, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rcm.kit.models import Base, EnumText, TenantOwned, enum_check


class LinkedType(enum.StrEnum):
    """FHIR resource types whose identifiers are remembered (the ones that become a record of ours)."""

    PATIENT = "Patient"
    COVERAGE = "Coverage"
    PRACTITIONER = "Practitioner"
    ORGANIZATION = "Organization"
    ENCOUNTER = "Encounter"


class TargetType(enum.StrEnum):
    PATIENT = "patient"
    COVERAGE = "coverage"
    PROVIDER = "provider"
    ENCOUNTER = "encounter"


class FhirResourceLink(TenantOwned, Base):
    """(resource type, identifier) -> our record. The identifier (system|value, or the resource id) is kept
    only as its blind index: MRNs, member ids and SSNs are PHI."""

    __tablename__ = "fhir_resource_link"
    __table_args__ = (
        UniqueConstraint("tenant_id", "resource_type", "identifier_bidx"),
        enum_check("resource_type", LinkedType),
        enum_check("target_type", TargetType),
    )

    resource_type: Mapped[LinkedType] = mapped_column(EnumText(LinkedType))
    identifier_bidx: Mapped[bytes] = mapped_column(LargeBinary)
    target_type: Mapped[TargetType] = mapped_column(EnumText(TargetType))
    target_id: Mapped[uuid.UUID]
