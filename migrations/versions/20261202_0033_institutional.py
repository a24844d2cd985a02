"""Institutional claims (837I): a practice's or an encounter's claim type, the encounter's institutional
facts, revenue codes on lines, and the claim type of claims and submission batches.

Revision ID: 0033_institutional
Revises: 0032_x12_links
Create Date: 2026-12-02

- ``encounter.claim_type``: ``professional`` (837P) or ``institutional`` (837I); existing rows are
  professional. An institutional encounter may carry its facts (005010X223A2 loop 2300): type of bill
  (facility type, classification, frequency: CLM05), statement period (DTP*434), admission date and hour
  (DTP*435), admission type and source and patient status (CL1), attending provider (2310A NM1*71) and
  admitting diagnosis (HI*ABJ). Codes and dates only, held in clear as the service date is; a professional
  encounter carries none of them (CHECK).
- ``charge_line.revenue_code`` and ``claim_line.revenue_code``: the NUBC revenue code (SV201), four digits.
- ``claim.claim_type`` and ``submission_batch.claim_type``: a batch is one 837P or one 837I, never mixed.

The tables exist with their RLS policies and table-level grants: new columns are covered by both. The DDL is
frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0033_institutional"
down_revision = "0032_x12_links"
branch_labels = None
depends_on = None

_FACTS = (
    ("type_of_bill", "text"),
    ("statement_start", "date"),
    ("statement_end", "date"),
    ("admission_date", "date"),
    ("admission_hour", "smallint"),
    ("admission_type", "text"),
    ("admission_source", "text"),
    ("patient_status", "text"),
    ("attending_npi", "text"),
    ("attending_family_name", "text"),
    ("attending_given_name", "text"),
    ("admitting_diagnosis", "text"),
)
_CLAIM_TYPE = (
    "ADD COLUMN claim_type text NOT NULL DEFAULT 'professional',"
    " ADD CONSTRAINT ck_{table}_claim_type CHECK (claim_type IN ('professional', 'institutional'))"
)

UPGRADE = [
    "ALTER TABLE rcm.encounter "
    + _CLAIM_TYPE.format(table="encounter")
    + ", "
    + ", ".join(f"ADD COLUMN {column} {kind}" for column, kind in _FACTS),
    r"""
    ALTER TABLE rcm.encounter
      ADD CONSTRAINT ck_encounter_institutional_only
        CHECK (claim_type = 'institutional' OR ("""
    + " AND ".join(f"{column} IS NULL" for column, _ in _FACTS)
    + r""")),
      ADD CONSTRAINT ck_encounter_type_of_bill CHECK (type_of_bill ~ '^[1-8][1-9][0-9A-Z]$'),
      ADD CONSTRAINT ck_encounter_admission_hour CHECK (admission_hour BETWEEN 0 AND 23),
      ADD CONSTRAINT ck_encounter_attending_npi CHECK (attending_npi ~ '^[0-9]{10}$'),
      ADD CONSTRAINT ck_encounter_attending_whole
        CHECK ((attending_npi IS NULL) = (attending_family_name IS NULL)
               AND (attending_npi IS NOT NULL OR attending_given_name IS NULL))
    """,
    "ALTER TABLE rcm.charge_line ADD COLUMN revenue_code text,"
    " ADD CONSTRAINT ck_charge_line_revenue_code CHECK (revenue_code ~ '^[0-9]{4}$')",
    "ALTER TABLE rcm.claim " + _CLAIM_TYPE.format(table="claim"),
    "ALTER TABLE rcm.claim_line ADD COLUMN revenue_code text,"
    " ADD CONSTRAINT ck_claim_line_revenue_code CHECK (revenue_code ~ '^[0-9]{4}$')",
    "ALTER TABLE rcm.submission_batch " + _CLAIM_TYPE.format(table="submission_batch"),
]

DOWNGRADE = [
    "ALTER TABLE rcm.submission_batch DROP COLUMN claim_type",
    "ALTER TABLE rcm.claim_line DROP COLUMN revenue_code",
    "ALTER TABLE rcm.claim DROP COLUMN claim_type",
    "ALTER TABLE rcm.charge_line DROP COLUMN revenue_code",
    "ALTER TABLE rcm.encounter DROP COLUMN claim_type, "
    + ", ".join(f"DROP COLUMN {column}" for column, _ in _FACTS),
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
