"""Code sets: global reference data, versioned by effective date (issue 6, point 3).

- ``code_set_release``: one row per file loaded (code set, label, effective window, source, checksum, what
  changed). A reload of the same file finds its checksum and changes nothing; a new quarter or fiscal year is
  a new row beside the old ones.
- ``code_version``: one row per code and validity window, for every code system looked up by code (ICD-10-CM,
  CPT, HCPCS Level II, modifiers, place of service, CARC, RARC). ``effective_through`` is NULL while the code
  is in the newest release; a release that drops or rewords a code closes the old row and opens a new one.
- ``ncci_ptp_edit``: NCCI procedure-to-procedure pairs (column 1/column 2), effective and deletion dates and
  the modifier indicator; ``mue_limit``: medically unlikely edits (units per code, adjudication indicator);
  ``sex_age_edit``: the operator's sex- and age-specific code edits.

No ``tenant_id`` and no row-level security: the tables are the same for every practice (with Citus they would
be reference tables). The app role reads them; only the operator (owner role, ``rcm codes load``) writes.

Revision ID: 0014_code_sets
Revises: 0013_least_privilege
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0014_code_sets"
down_revision = "0013_least_privilege"
branch_labels = None
depends_on = None

_SYSTEMS = "'icd10cm', 'cpt', 'hcpcs', 'modifier', 'pos', 'carc', 'rarc'"
_CODE_SETS = f"{_SYSTEMS}, 'ncci_ptp', 'mue', 'sex_age'"

UPGRADE = [
    f"""
    CREATE TABLE rcm.code_set_release (
      id uuid NOT NULL,
      code_set text NOT NULL,
      label text NOT NULL,
      effective_from date NOT NULL,
      effective_through date,
      source text NOT NULL,
      checksum text NOT NULL,
      loaded_at timestamptz NOT NULL DEFAULT now(),
      added integer NOT NULL DEFAULT 0,
      changed integer NOT NULL DEFAULT 0,
      terminated integer NOT NULL DEFAULT 0,
      unchanged integer NOT NULL DEFAULT 0,
      CONSTRAINT pk_code_set_release PRIMARY KEY (id),
      CONSTRAINT uq_code_set_release_code_set_checksum UNIQUE (code_set, checksum),
      CONSTRAINT ck_code_set_release_code_set CHECK (code_set IN ({_CODE_SETS}))
    )
    """,
    "CREATE INDEX ix_code_set_release_code_set_effective_from ON rcm.code_set_release (code_set, effective_from)",
    f"""
    CREATE TABLE rcm.code_version (
      system text NOT NULL,
      code text NOT NULL,
      effective_from date NOT NULL,
      effective_through date,
      billable boolean NOT NULL DEFAULT true,
      description text,
      release_id uuid NOT NULL,
      CONSTRAINT pk_code_version PRIMARY KEY (system, code, effective_from),
      CONSTRAINT fk_code_version_release_id_code_set_release FOREIGN KEY (release_id)
        REFERENCES rcm.code_set_release (id),
      CONSTRAINT ck_code_version_system CHECK (system IN ({_SYSTEMS}))
    )
    """,
    # Text search by description (ranked with ts_rank); the embedded server has no pg_trgm.
    "CREATE INDEX ix_code_version_search ON rcm.code_version"
    " USING gin (to_tsvector('english'::regconfig, coalesce(description, '')))",
    "CREATE INDEX ix_code_version_release_id ON rcm.code_version (release_id)",
    # Search by code prefix (``E11%``) under any collation.
    "CREATE INDEX ix_code_version_code_prefix ON rcm.code_version (system, code text_pattern_ops)",
    """
    CREATE TABLE rcm.ncci_ptp_edit (
      column1 text NOT NULL,
      column2 text NOT NULL,
      effective_from date NOT NULL,
      deleted_on date,
      modifier_indicator smallint NOT NULL,
      existed_before_1996 boolean NOT NULL DEFAULT false,
      rationale text,
      release_id uuid NOT NULL,
      CONSTRAINT pk_ncci_ptp_edit PRIMARY KEY (column1, column2, effective_from),
      CONSTRAINT fk_ncci_ptp_edit_release_id_code_set_release FOREIGN KEY (release_id)
        REFERENCES rcm.code_set_release (id),
      CONSTRAINT ck_ncci_ptp_edit_modifier_indicator CHECK (modifier_indicator IN (0, 1, 9))
    )
    """,
    "CREATE INDEX ix_ncci_ptp_edit_column2 ON rcm.ncci_ptp_edit (column2)",
    """
    CREATE TABLE rcm.mue_limit (
      code text NOT NULL,
      effective_from date NOT NULL,
      effective_through date,
      units integer NOT NULL,
      adjudication_indicator smallint NOT NULL,
      rationale text,
      release_id uuid NOT NULL,
      CONSTRAINT pk_mue_limit PRIMARY KEY (code, effective_from),
      CONSTRAINT fk_mue_limit_release_id_code_set_release FOREIGN KEY (release_id)
        REFERENCES rcm.code_set_release (id),
      CONSTRAINT ck_mue_limit_adjudication_indicator CHECK (adjudication_indicator IN (1, 2, 3)),
      CONSTRAINT ck_mue_limit_units CHECK (units >= 0)
    )
    """,
    f"""
    CREATE TABLE rcm.sex_age_edit (
      system text NOT NULL,
      code text NOT NULL,
      effective_from date NOT NULL,
      effective_through date,
      sex text,
      min_age_years integer,
      max_age_years integer,
      release_id uuid NOT NULL,
      CONSTRAINT pk_sex_age_edit PRIMARY KEY (system, code, effective_from),
      CONSTRAINT fk_sex_age_edit_release_id_code_set_release FOREIGN KEY (release_id)
        REFERENCES rcm.code_set_release (id),
      CONSTRAINT ck_sex_age_edit_system CHECK (system IN ({_SYSTEMS})),
      CONSTRAINT ck_sex_age_edit_sex CHECK (sex IN ('female', 'male'))
    )
    """,
    # Reference data: the app reads, the operator writes (as the owner role).
    "GRANT SELECT ON rcm.code_set_release, rcm.code_version, rcm.ncci_ptp_edit, rcm.mue_limit,"
    " rcm.sex_age_edit TO rcm_app",
]

DOWNGRADE = [
    "DROP TABLE rcm.sex_age_edit",
    "DROP TABLE rcm.mue_limit",
    "DROP TABLE rcm.ncci_ptp_edit",
    "DROP TABLE rcm.code_version",
    "DROP TABLE rcm.code_set_release",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
