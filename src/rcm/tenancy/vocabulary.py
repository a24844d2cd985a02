"""The tenancy vocabulary: one enum per closed set of values, shared by the model, the DTOs and OpenAPI.

StrEnum keeps the wire and database format (the plain strings) while the code names members, not literals.
"""

from __future__ import annotations

from enum import StrEnum


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # reads and writes refused until reactivated
    OFFBOARDED = "offboarded"  # keys shredded; final (a manifest cannot reactivate it)


class ClaimType(StrEnum):
    """Which 837 a practice's encounters are billed on: the manifest's default, an encounter's own choice."""

    PROFESSIONAL = "professional"  # 837P (005010X222A1): CMS-1500 services
    INSTITUTIONAL = "institutional"  # 837I (005010X223A2): UB-04 facility bills
