"""Intake fields the 837 needs: a dependent's subscriber, the referring provider, the service facility and
the prior authorization.

Revision ID: 0026_intake_fields
Revises: 0025_webhooks
Create Date: 2026-12-01

- ``coverage``: the subscriber's demographics when the patient is not the subscriber (relationship spouse,
  child or other; 837P loop 2010BA with the patient in 2000C). Names, birth date and address are PHI:
  AES-256-GCM ciphertext (bytea) like the patient's; sex is plain text as the patient's is (not one of
  HIPAA's identifiers). A self coverage carries none of them (CHECK), and a subscriber has a family name,
  a given name and a birth date together or not at all.
- ``encounter``: the referring provider (837P 2310A NM1*DN: NPI, family and given name, taxonomy), the service
  facility (2310C NM1*77: name, optional NPI, address) and the prior authorization number (2300 REF*G1).
  None of it is PHI: ordinary text columns, each group whole or absent (CHECK).

The tables exist with their RLS policies and table-level grants: new columns are covered by both. The DDL is
frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0026_intake_fields"
down_revision = "0025_webhooks"
branch_labels = None
depends_on = None

_SUBSCRIBER = (
    "subscriber_family_name",
    "subscriber_given_name",
    "subscriber_middle_name",
    "subscriber_birth_date",
    "subscriber_address",
)
_ENCOUNTER = (
    "referring_npi",
    "referring_family_name",
    "referring_given_name",
    "referring_taxonomy",
    "facility_name",
    "facility_npi",
    "facility_line1",
    "facility_line2",
    "facility_city",
    "facility_state",
    "facility_postal_code",
    "prior_authorization",
)

UPGRADE = [
    "ALTER TABLE rcm.coverage "
    + ", ".join(f"ADD COLUMN {column} bytea" for column in _SUBSCRIBER)
    + ", ADD COLUMN subscriber_sex text",
    """
    ALTER TABLE rcm.coverage
      ADD CONSTRAINT ck_coverage_subscriber_sex
        CHECK (subscriber_sex IN ('female', 'male', 'other', 'unknown')),
      ADD CONSTRAINT ck_coverage_subscriber_whole
        CHECK ((subscriber_family_name IS NULL) = (subscriber_given_name IS NULL)
               AND (subscriber_family_name IS NULL) = (subscriber_birth_date IS NULL)),
      ADD CONSTRAINT ck_coverage_self_has_no_subscriber
        CHECK (relationship <> 'self' OR (subscriber_family_name IS NULL AND subscriber_middle_name IS NULL
               AND subscriber_address IS NULL AND subscriber_sex IS NULL))
    """,
    "ALTER TABLE rcm.encounter " + ", ".join(f"ADD COLUMN {column} text" for column in _ENCOUNTER),
    r"""
    ALTER TABLE rcm.encounter
      ADD CONSTRAINT ck_encounter_referring_whole
        CHECK ((referring_npi IS NULL) = (referring_family_name IS NULL)
               AND (referring_npi IS NOT NULL OR (referring_given_name IS NULL AND referring_taxonomy IS NULL))),
      ADD CONSTRAINT ck_encounter_referring_npi CHECK (referring_npi ~ '^[0-9]{10}$'),
      ADD CONSTRAINT ck_encounter_facility_whole
        CHECK ((facility_name IS NULL) = (facility_line1 IS NULL)
               AND (facility_name IS NULL) = (facility_city IS NULL)
               AND (facility_name IS NULL) = (facility_state IS NULL)
               AND (facility_name IS NULL) = (facility_postal_code IS NULL)
               AND (facility_name IS NOT NULL OR (facility_npi IS NULL AND facility_line2 IS NULL))),
      ADD CONSTRAINT ck_encounter_facility_npi CHECK (facility_npi ~ '^[0-9]{10}$'),
      ADD CONSTRAINT ck_encounter_prior_authorization
        CHECK (char_length(prior_authorization) BETWEEN 1 AND 50)
    """,
]

DOWNGRADE = [
    "ALTER TABLE rcm.encounter " + ", ".join(f"DROP COLUMN {column}" for column in _ENCOUNTER),
    "ALTER TABLE rcm.coverage "
    + ", ".join(f"DROP COLUMN {column}" for column in (*_SUBSCRIBER, "subscriber_sex")),
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
