"""The identity vocabulary with no dependencies, so the principal and the role tables can both use it."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """OAuth2 scopes. StrEnum: the wire form (``patients:read``) is the value, the code names the member."""

    PATIENTS_READ = "patients:read"
    PATIENTS_WRITE = "patients:write"
    ENCOUNTERS_READ = "encounters:read"
    ENCOUNTERS_WRITE = "encounters:write"
    CODING_WRITE = "coding:write"
    CLAIMS_READ = "claims:read"
    CLAIMS_WRITE = "claims:write"
    PAYMENTS_READ = "payments:read"
    PAYMENTS_WRITE = "payments:write"
    # Front-desk collections: a practice's system posts a patient's payment (no refunds, plans or remits).
    PATIENT_PAYMENTS_WRITE = "patient-payments:write"
    REPORTS_READ = "reports:read"
    STAFF_MANAGE = "staff:manage"
    AUDIT_READ = "audit:read"
    ADMIN = "admin"
