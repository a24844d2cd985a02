"""Eligibility checks (270/271) and claim status inquiries (276/277).

Revision ID: 0029_eligibility
Revises: 0026_intake_fields
Create Date: 2026-12-01

- ``eligibility_check``: one 270 asked about one coverage and what its 271 said: status (active, inactive,
  unknown, refused), the plan dates, the AAA reject reason (or the 999's refusal) and the kept 270 and 271
  (``rcm.x12_file``). No PHI in clear: the member id stays on the coverage (encrypted).
- ``eligibility_benefit``: per check, service type (EB03) and network (EB12), the copay and deductible in
  cents, the coinsurance in basis points (EB08 0.2 is 2000: never a float).
- ``claim_status_inquiry``: one 276 asked about one claim, the 277's category and status code, what it did
  (outcome) and when the claim is next due an inquiry; the kept 276 and 277.

Every table is tenant-owned with RLS enabled and forced with the tenant policy, and its grants, here. The
app role only appends: a check or an inquiry is a record of what a payer said. The DDL is frozen as SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0029_eligibility"
down_revision = "0026_intake_fields"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_CHECK_STATUS = "'active', 'inactive', 'unknown', 'refused'"
_NETWORK = "'in', 'out', 'both', 'unspecified'"
_OUTCOMES = "'accepted', 'rejected', 'finalized', 'pending', 'not_found', 'refused'"

TABLES = [
    f"""
    CREATE TABLE rcm.eligibility_check (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      patient_id uuid NOT NULL,
      coverage_id uuid NOT NULL,
      payer_id text NOT NULL,
      checked_at timestamptz NOT NULL,
      status text NOT NULL,
      service_types text[] NOT NULL,
      plan_begin date,
      plan_end date,
      reject_reason text,
      reject_text text,
      request_file_id uuid,
      response_file_id uuid,
      CONSTRAINT pk_eligibility_check PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_eligibility_check_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_eligibility_check_tenant_id_patient_id_patient
        FOREIGN KEY (tenant_id, patient_id) REFERENCES rcm.patient (tenant_id, id),
      CONSTRAINT fk_eligibility_check_tenant_id_coverage_id_coverage
        FOREIGN KEY (tenant_id, coverage_id) REFERENCES rcm.coverage (tenant_id, id),
      CONSTRAINT fk_eligibility_check_tenant_id_request_file_id_x12_file
        FOREIGN KEY (tenant_id, request_file_id) REFERENCES rcm.x12_file (tenant_id, id),
      CONSTRAINT fk_eligibility_check_tenant_id_response_file_id_x12_file
        FOREIGN KEY (tenant_id, response_file_id) REFERENCES rcm.x12_file (tenant_id, id),
      CONSTRAINT ck_eligibility_check_status CHECK (status IN ({_CHECK_STATUS}))
    )
    """,
    "CREATE INDEX ix_eligibility_check_coverage ON rcm.eligibility_check (tenant_id, coverage_id, checked_at)",
    f"""
    CREATE TABLE rcm.eligibility_benefit (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      check_id uuid NOT NULL,
      service_type text NOT NULL,
      network text NOT NULL,
      copay_cents bigint,
      coinsurance_basis_points integer,
      deductible_cents bigint,
      deductible_remaining_cents bigint,
      CONSTRAINT pk_eligibility_benefit PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_eligibility_benefit_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_eligibility_benefit_tenant_id_check_id_eligibility_check
        FOREIGN KEY (tenant_id, check_id) REFERENCES rcm.eligibility_check (tenant_id, id),
      CONSTRAINT uq_eligibility_benefit_tenant_id_check_id_service_type_network
        UNIQUE (tenant_id, check_id, service_type, network),
      CONSTRAINT ck_eligibility_benefit_network CHECK (network IN ({_NETWORK})),
      CONSTRAINT ck_eligibility_benefit_coinsurance_basis_points
        CHECK (coinsurance_basis_points BETWEEN 0 AND 10000)
    )
    """,
    f"""
    CREATE TABLE rcm.claim_status_inquiry (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      claim_id uuid NOT NULL,
      outcome text NOT NULL,
      category text,
      status_code text,
      next_inquiry_at timestamptz NOT NULL,
      request_file_id uuid,
      response_file_id uuid,
      CONSTRAINT pk_claim_status_inquiry PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_claim_status_inquiry_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_claim_status_inquiry_tenant_id_claim_id_claim
        FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT fk_claim_status_inquiry_tenant_id_request_file_id_x12_file
        FOREIGN KEY (tenant_id, request_file_id) REFERENCES rcm.x12_file (tenant_id, id),
      CONSTRAINT fk_claim_status_inquiry_tenant_id_response_file_id_x12_file
        FOREIGN KEY (tenant_id, response_file_id) REFERENCES rcm.x12_file (tenant_id, id),
      CONSTRAINT ck_claim_status_inquiry_outcome CHECK (outcome IN ({_OUTCOMES}))
    )
    """,
    """
    CREATE INDEX ix_claim_status_inquiry_claim
      ON rcm.claim_status_inquiry (tenant_id, claim_id, next_inquiry_at)
    """,
]

# Records of what a payer said: appended, never changed.
GRANTS = {
    "eligibility_check": "SELECT, INSERT",
    "eligibility_benefit": "SELECT, INSERT",
    "claim_status_inquiry": "SELECT, INSERT",
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
    for table in ("claim_status_inquiry", "eligibility_benefit", "eligibility_check"):
        op.execute(f"DROP TABLE rcm.{table}")
