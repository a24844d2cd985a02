"""Claims: the payer directory, practices' payer enrollment, claims and their events, submission batches,
X12 control numbers, and the reason of a billing-queue item.

Revision ID: 0020_claims
Revises: 0019_blob_generation
Create Date: 2026-12-01

- ``payer`` (global, no tenant_id): the directory of payers the billing company bills (``rcm payers load``
  from a shipped or operator-owned file): payer id, name, default claim filing indicator (837 SBR09), the
  connector and endpoint reference serving claims, eligibility and status, how many days after submission a
  status inquiry is due, and the payer's timely filing limit. The app role reads it; only the owner role
  (the loader) writes it.
- ``payer_enrollment``: which directory payers a practice bills, with its submitter and receiver ids and the
  connector credentials BY REFERENCE (``env:NAME`` / ``file:PATH``, resolved by ``rcm.kit.secrets``; never a
  value). Written from the practice's manifest by the control role (``rcm tenants apply``, the admin API);
  the app role reads it.
- ``claim``: one claim per responsible payer of an encounter (frequency 1 original, 7 replacement, 8 void),
  its state, patient control number (CLM01: at most 20 characters, unique per practice, no PHI), the payer's
  claim control number once known, the original it replaces or voids, the diagnoses and total charge it was
  built with, and the submission batch that carries it. The app role may not DELETE a claim.
- ``claim_line``: the service lines a claim was built with (a snapshot: later coding changes do not alter
  a claim already built). Append-only.
- ``claim_event``: one row per transition of a claim (from, to, what caused it, who, why, the payer claim
  control number learnt). Append-only: the app role may SELECT and INSERT only.
- ``submission_batch``: ready claims of ONE practice for one payer, under one envelope whose ISA13/GS06/ST02
  control numbers are recorded here.
- ``x12_control_counter`` and ``x12_control_number`` (global): the interchange control numbers allocated per
  sender id (ISA06). The counter hands out the next number under a row lock; the ledger's primary key makes
  a reuse impossible even if the counter were reset. Neither holds a tenant id or anything about a claim.
- ``work_item.reason``: why a billing-queue item exists (scrub failure, rejection, eligibility, dead letter,
  follow-up, enrollment). NULL for coding items.

Every tenant-owned table has RLS enabled and forced with the tenant policy, and its grants, in this
revision. The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0020_claims"
down_revision = "0019_blob_generation"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_STATES = (
    "'created', 'ready', 'submitted', 'accepted', 'rejected', 'paid', 'partially_paid', 'denied', "
    "'appealed', 'closed', 'voided'"
)
_FILING = (
    "'11', '12', '13', '14', '15', '16', '17', 'AM', 'BL', 'CH', 'CI', 'DS', 'FI', 'HM', 'LM', 'MA', 'MB', "
    "'MC', 'OF', 'TV', 'VA', 'WC', 'ZZ'"
)
_CAUSES = "'scrub', 'biller', 'submission', 'acknowledgment', 'remittance', 'status', 'system'"
_REASONS = "'scrub_failure', 'rejection', 'eligibility', 'dead_letter', 'follow_up', 'enrollment'"
_REFERENCE = "^[a-z]+:[A-Za-z0-9/_.-]+$"

TABLES = [
    f"""
    CREATE TABLE rcm.payer (
      id text NOT NULL,
      name text NOT NULL,
      claim_filing_indicator text NOT NULL,
      claims_connector text,
      claims_endpoint text,
      eligibility_connector text,
      eligibility_endpoint text,
      status_connector text,
      status_endpoint text,
      status_inquiry_days integer NOT NULL,
      timely_filing_days integer,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_payer PRIMARY KEY (id),
      CONSTRAINT ck_payer_id CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9-]{{0,79}}$'),
      CONSTRAINT ck_payer_claim_filing_indicator CHECK (claim_filing_indicator IN ({_FILING})),
      CONSTRAINT ck_payer_status_inquiry_days CHECK (status_inquiry_days BETWEEN 1 AND 365),
      CONSTRAINT ck_payer_timely_filing_days CHECK (timely_filing_days BETWEEN 1 AND 3650)
    )
    """,
    f"""
    CREATE TABLE rcm.payer_enrollment (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      payer_id text NOT NULL,
      name text NOT NULL,
      submitter_id text NOT NULL,
      receiver_id text NOT NULL,
      credentials_reference text,
      timely_filing_days integer,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_payer_enrollment PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_payer_enrollment_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_payer_enrollment_payer_id_payer FOREIGN KEY (payer_id) REFERENCES rcm.payer (id),
      CONSTRAINT uq_payer_enrollment_tenant_id_payer_id UNIQUE (tenant_id, payer_id),
      CONSTRAINT ck_payer_enrollment_credentials_reference
        CHECK (credentials_reference ~ '{_REFERENCE}'),
      CONSTRAINT ck_payer_enrollment_submitter_id CHECK (submitter_id ~ '^[A-Za-z0-9]{{2,15}}$'),
      CONSTRAINT ck_payer_enrollment_receiver_id CHECK (receiver_id ~ '^[A-Za-z0-9-]{{2,80}}$')
    )
    """,
    """
    CREATE TABLE rcm.submission_batch (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      payer_id text NOT NULL,
      connector text,
      sender_id text NOT NULL,
      receiver_id text NOT NULL,
      interchange_control_number integer NOT NULL,
      group_control_number integer NOT NULL,
      transaction_set_control_number text NOT NULL,
      claim_count integer NOT NULL,
      status text NOT NULL,
      sent_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_submission_batch PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_submission_batch_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_submission_batch_interchange
        UNIQUE (tenant_id, sender_id, interchange_control_number),
      CONSTRAINT ck_submission_batch_status CHECK (status IN ('pending', 'sent', 'failed')),
      CONSTRAINT ck_submission_batch_interchange_control_number
        CHECK (interchange_control_number BETWEEN 1 AND 999999999),
      CONSTRAINT ck_submission_batch_claim_count CHECK (claim_count >= 1)
    )
    """,
    f"""
    CREATE TABLE rcm.claim (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      encounter_id uuid NOT NULL,
      patient_id uuid NOT NULL,
      coverage_id uuid,
      payer_id text NOT NULL,
      responsibility text NOT NULL,
      state text NOT NULL,
      frequency smallint NOT NULL,
      patient_control_number text NOT NULL,
      original_claim_id uuid,
      original_payer_claim_control_number text,
      payer_claim_control_number text,
      service_date date NOT NULL,
      place_of_service text NOT NULL,
      diagnoses text[] NOT NULL,
      total_charge_cents bigint NOT NULL,
      submission_batch_id uuid,
      state_changed_at timestamptz NOT NULL DEFAULT now(),
      closed_reason text,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_claim PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_claim_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_claim_tenant_id_encounter_id_encounter
        FOREIGN KEY (tenant_id, encounter_id) REFERENCES rcm.encounter (tenant_id, id),
      CONSTRAINT fk_claim_tenant_id_patient_id_patient
        FOREIGN KEY (tenant_id, patient_id) REFERENCES rcm.patient (tenant_id, id),
      CONSTRAINT fk_claim_tenant_id_coverage_id_coverage
        FOREIGN KEY (tenant_id, coverage_id) REFERENCES rcm.coverage (tenant_id, id),
      CONSTRAINT fk_claim_tenant_id_original_claim_id_claim
        FOREIGN KEY (tenant_id, original_claim_id) REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT fk_claim_tenant_id_submission_batch_id_submission_batch
        FOREIGN KEY (tenant_id, submission_batch_id) REFERENCES rcm.submission_batch (tenant_id, id),
      CONSTRAINT uq_claim_tenant_id_patient_control_number UNIQUE (tenant_id, patient_control_number),
      CONSTRAINT ck_claim_state CHECK (state IN ({_STATES})),
      CONSTRAINT ck_claim_responsibility CHECK (responsibility IN ('primary', 'secondary', 'tertiary')),
      CONSTRAINT ck_claim_frequency CHECK (frequency IN (1, 7, 8)),
      CONSTRAINT ck_claim_patient_control_number CHECK (patient_control_number ~ '^[A-Z0-9]{{1,20}}$'),
      CONSTRAINT ck_claim_original CHECK ((frequency = 1) = (original_claim_id IS NULL)),
      CONSTRAINT ck_claim_total_charge_cents CHECK (total_charge_cents >= 0)
    )
    """,
    # One original claim per encounter and responsibility: scrubbing twice builds one claim.
    "CREATE UNIQUE INDEX uq_claim_original ON rcm.claim (tenant_id, encounter_id, responsibility)"
    " WHERE frequency = 1",
    "CREATE INDEX ix_claim_created ON rcm.claim (tenant_id, created_at, id)",
    "CREATE INDEX ix_claim_state ON rcm.claim (tenant_id, state, created_at, id)",
    "CREATE INDEX ix_claim_encounter ON rcm.claim (tenant_id, encounter_id)",
    # Ready claims not yet in a batch, per payer: what the batcher reads.
    "CREATE INDEX ix_claim_unbatched ON rcm.claim (tenant_id, payer_id, created_at)"
    " WHERE state = 'ready' AND submission_batch_id IS NULL",
    "CREATE INDEX ix_claim_batch ON rcm.claim (tenant_id, submission_batch_id)",
    """
    CREATE TABLE rcm.claim_line (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      claim_id uuid NOT NULL,
      line_number smallint NOT NULL,
      procedure_code text NOT NULL,
      modifiers text[] NOT NULL,
      units integer NOT NULL,
      charge_cents bigint NOT NULL,
      diagnosis_pointers smallint[] NOT NULL,
      service_date date NOT NULL,
      CONSTRAINT pk_claim_line PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_claim_line_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_claim_line_tenant_id_claim_id_claim
        FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT uq_claim_line_tenant_id_claim_id_line_number UNIQUE (tenant_id, claim_id, line_number)
    )
    """,
    f"""
    CREATE TABLE rcm.claim_event (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      claim_id uuid NOT NULL,
      from_state text,
      to_state text NOT NULL,
      cause text NOT NULL,
      actor text,
      reason text,
      payer_claim_control_number text,
      CONSTRAINT pk_claim_event PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_claim_event_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_claim_event_tenant_id_claim_id_claim
        FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT ck_claim_event_from_state CHECK (from_state IN ({_STATES})),
      CONSTRAINT ck_claim_event_to_state CHECK (to_state IN ({_STATES})),
      CONSTRAINT ck_claim_event_cause CHECK (cause IN ({_CAUSES}))
    )
    """,
    "CREATE INDEX ix_claim_event_claim ON rcm.claim_event (tenant_id, claim_id, created_at)",
    """
    CREATE TABLE rcm.x12_control_counter (
      sender_id text NOT NULL,
      last_number integer NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_x12_control_counter PRIMARY KEY (sender_id),
      CONSTRAINT ck_x12_control_counter_last_number CHECK (last_number BETWEEN 1 AND 999999999)
    )
    """,
    """
    CREATE TABLE rcm.x12_control_number (
      sender_id text NOT NULL,
      control_number integer NOT NULL,
      allocated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_x12_control_number PRIMARY KEY (sender_id, control_number)
    )
    """,
    # Why a billing-queue item exists; coding items have none.
    "ALTER TABLE rcm.work_item ADD COLUMN reason text",
    f"ALTER TABLE rcm.work_item ADD CONSTRAINT ck_work_item_reason CHECK (reason IN ({_REASONS}))",
]

# Tenant-owned tables and what the app role may do. Events and lines are history: written once.
GRANTS = {
    "payer_enrollment": "SELECT",
    "submission_batch": "SELECT, INSERT, UPDATE",
    "claim": "SELECT, INSERT, UPDATE",
    "claim_line": "SELECT, INSERT",
    "claim_event": "SELECT, INSERT",
}

OTHER_GRANTS = [
    "GRANT SELECT ON rcm.payer TO rcm_app",
    # The manifest's enrollments are control-plane writes (like staff assignments).
    "GRANT INSERT, UPDATE, DELETE ON rcm.payer_enrollment TO rcm_control",
    # Control numbers: the counter moves forward, the ledger only grows.
    "GRANT SELECT, INSERT, UPDATE ON rcm.x12_control_counter TO rcm_app",
    "GRANT SELECT, INSERT ON rcm.x12_control_number TO rcm_app",
]


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT {privileges} ON rcm.{table} TO rcm_app")
    for statement in OTHER_GRANTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE rcm.work_item DROP CONSTRAINT ck_work_item_reason")
    op.execute("ALTER TABLE rcm.work_item DROP COLUMN reason")
    for table in (
        "x12_control_number",
        "x12_control_counter",
        "claim_event",
        "claim_line",
        "claim",
        "submission_batch",
        "payer_enrollment",
        "payer",
    ):
        op.execute(f"DROP TABLE rcm.{table}")
