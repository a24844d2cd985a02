"""Encounter intake: providers, patients, coverages, encounters, diagnoses, charge lines, work items,
idempotency records.

Revision ID: 0005_intake
Revises: 0004_identity
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0005_intake"
down_revision = "0004_identity"
branch_labels = None
depends_on = None

# Frozen as plain SQL (see 0001_core): no live helper or naming convention decides what this revision does.
# Every table is tenant-owned: (tenant_id, id) primary key, tenant_id leading every foreign key.
_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

TABLES = [
    """
    CREATE TABLE rcm.provider (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      npi text NOT NULL,
      name text NOT NULL,
      kind text NOT NULL,
      taxonomy text,
      CONSTRAINT pk_provider PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_provider_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_provider_tenant_id_npi UNIQUE (tenant_id, npi),
      CONSTRAINT ck_provider_kind CHECK (kind IN ('individual', 'organization'))
    )
    """,
    """
    CREATE TABLE rcm.patient (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      mrn bytea NOT NULL,
      given_name bytea NOT NULL,
      family_name bytea NOT NULL,
      birth_date bytea NOT NULL,
      address bytea,
      phone bytea,
      sex text NOT NULL,
      mrn_bidx bytea NOT NULL,
      name_dob_bidx bytea NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_patient PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_patient_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      -- One patient per MRN in a practice: intake matches on it instead of creating a duplicate.
      CONSTRAINT uq_patient_tenant_id_mrn_bidx UNIQUE (tenant_id, mrn_bidx),
      CONSTRAINT ck_patient_sex CHECK (sex IN ('female', 'male', 'other', 'unknown'))
    )
    """,
    "CREATE INDEX ix_patient_name_dob ON rcm.patient (tenant_id, name_dob_bidx)",
    """
    CREATE TABLE rcm.coverage (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      patient_id uuid NOT NULL,
      payer_id text NOT NULL,
      member_id bytea NOT NULL,
      group_number bytea,
      member_id_bidx bytea NOT NULL,
      relationship text NOT NULL,
      priority text NOT NULL,
      start_date date,
      end_date date,
      CONSTRAINT pk_coverage PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_coverage_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_coverage_tenant_id_patient_id_patient
        FOREIGN KEY (tenant_id, patient_id) REFERENCES rcm.patient (tenant_id, id),
      CONSTRAINT ck_coverage_relationship CHECK (relationship IN ('self', 'spouse', 'child', 'other')),
      CONSTRAINT ck_coverage_priority CHECK (priority IN ('primary', 'secondary', 'tertiary'))
    )
    """,
    "CREATE INDEX ix_coverage_member ON rcm.coverage (tenant_id, member_id_bidx)",
    "CREATE INDEX ix_coverage_patient ON rcm.coverage (tenant_id, patient_id)",
    """
    CREATE TABLE rcm.encounter (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      external_id text NOT NULL,
      patient_id uuid NOT NULL,
      coverage_id uuid,
      rendering_provider_id uuid NOT NULL,
      billing_provider_id uuid NOT NULL,
      service_date date NOT NULL,
      place_of_service text NOT NULL,
      documentation bytea,
      status text NOT NULL,
      total_charge_cents bigint NOT NULL,
      source text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_encounter PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_encounter_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_encounter_tenant_id_patient_id_patient
        FOREIGN KEY (tenant_id, patient_id) REFERENCES rcm.patient (tenant_id, id),
      CONSTRAINT fk_encounter_tenant_id_coverage_id_coverage
        FOREIGN KEY (tenant_id, coverage_id) REFERENCES rcm.coverage (tenant_id, id),
      CONSTRAINT fk_encounter_tenant_id_rendering_provider_id_provider
        FOREIGN KEY (tenant_id, rendering_provider_id) REFERENCES rcm.provider (tenant_id, id),
      CONSTRAINT fk_encounter_tenant_id_billing_provider_id_provider
        FOREIGN KEY (tenant_id, billing_provider_id) REFERENCES rcm.provider (tenant_id, id),
      CONSTRAINT uq_encounter_tenant_id_external_id UNIQUE (tenant_id, external_id),
      CONSTRAINT ck_encounter_total_charge CHECK (total_charge_cents >= 0)
    )
    """,
    "CREATE INDEX ix_encounter_list ON rcm.encounter (tenant_id, created_at, id)",
    "CREATE INDEX ix_encounter_patient ON rcm.encounter (tenant_id, patient_id)",
    """
    CREATE TABLE rcm.diagnosis (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      encounter_id uuid NOT NULL,
      sequence smallint NOT NULL,
      code text NOT NULL,
      CONSTRAINT pk_diagnosis PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_diagnosis_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_diagnosis_tenant_id_encounter_id_encounter
        FOREIGN KEY (tenant_id, encounter_id) REFERENCES rcm.encounter (tenant_id, id),
      CONSTRAINT uq_diagnosis_tenant_id_encounter_id_sequence UNIQUE (tenant_id, encounter_id, sequence),
      CONSTRAINT ck_diagnosis_sequence CHECK (sequence BETWEEN 1 AND 12)
    )
    """,
    """
    CREATE TABLE rcm.charge_line (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      encounter_id uuid NOT NULL,
      line_number smallint NOT NULL,
      procedure_code text NOT NULL,
      modifiers text[] NOT NULL,
      units integer NOT NULL,
      charge_cents bigint NOT NULL,
      diagnosis_pointers smallint[] NOT NULL,
      service_date date,
      CONSTRAINT pk_charge_line PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_charge_line_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_charge_line_tenant_id_encounter_id_encounter
        FOREIGN KEY (tenant_id, encounter_id) REFERENCES rcm.encounter (tenant_id, id),
      CONSTRAINT uq_charge_line_tenant_id_encounter_id_line_number UNIQUE (tenant_id, encounter_id, line_number),
      CONSTRAINT ck_charge_line_units CHECK (units > 0),
      CONSTRAINT ck_charge_line_charge CHECK (charge_cents >= 0)
    )
    """,
    """
    CREATE TABLE rcm.encounter_event (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      encounter_id uuid NOT NULL,
      status text NOT NULL,
      note text,
      CONSTRAINT pk_encounter_event PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_encounter_event_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_encounter_event_tenant_id_encounter_id_encounter
        FOREIGN KEY (tenant_id, encounter_id) REFERENCES rcm.encounter (tenant_id, id)
    )
    """,
    "CREATE INDEX ix_encounter_event ON rcm.encounter_event (tenant_id, encounter_id, created_at)",
    """
    CREATE TABLE rcm.work_item (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      queue text NOT NULL,
      encounter_id uuid NOT NULL,
      status text NOT NULL,
      priority smallint NOT NULL,
      due_at timestamptz NOT NULL,
      CONSTRAINT pk_work_item PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_work_item_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_work_item_tenant_id_encounter_id_encounter
        FOREIGN KEY (tenant_id, encounter_id) REFERENCES rcm.encounter (tenant_id, id)
    )
    """,
    "CREATE INDEX ix_work_item_queue ON rcm.work_item (tenant_id, queue, status, priority, due_at)",
    """
    CREATE TABLE rcm.idempotency_record (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      principal text NOT NULL,
      key text NOT NULL,
      route text NOT NULL,
      request_hash bytea NOT NULL,
      status_code integer NOT NULL,
      response_body bytea NOT NULL,
      -- What the first response touched, so a replay is audited like the read it is.
      resource_type text NOT NULL DEFAULT '',
      resource_ids uuid[] NOT NULL DEFAULT '{}',
      patient_ids uuid[] NOT NULL DEFAULT '{}',
      CONSTRAINT pk_idempotency_record PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_idempotency_record_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_idempotency_record_tenant_id_principal_key UNIQUE (tenant_id, principal, key)
    )
    """,
]

# What the app role may do on each table (RLS enabled and forced, one tenant policy, in the same revision).
GRANTS = {
    "provider": "SELECT, INSERT, UPDATE",
    "patient": "SELECT, INSERT, UPDATE",
    "coverage": "SELECT, INSERT, UPDATE",
    "encounter": "SELECT, INSERT, UPDATE",
    "diagnosis": "SELECT, INSERT, UPDATE, DELETE",
    "charge_line": "SELECT, INSERT, UPDATE, DELETE",
    # History rows are written once and never changed.
    "encounter_event": "SELECT, INSERT",
    "work_item": "SELECT, INSERT, UPDATE",
    "idempotency_record": "SELECT, INSERT, UPDATE, DELETE",
}


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT {privileges} ON rcm.{table} TO rcm_app")


def downgrade() -> None:
    for table in reversed(GRANTS):
        op.execute(f"DROP TABLE rcm.{table}")
