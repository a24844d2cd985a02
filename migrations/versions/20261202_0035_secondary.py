"""Secondary and tertiary claims (coordination of benefits): the claim a next payer's claim follows, and the
payer's adjudication of a claim kept for the next payer's 837 (loops 2320/2430).

Revision ID: 0035_secondary
Revises: 0034_denials
Create Date: 2026-12-02

- ``claim.primary_claim_id``: on a secondary claim, the primary claim whose 835 built it; on a tertiary, the
  secondary's. Never on a primary claim (CHECK).
- ``claim_adjudication``: what a payer's 835 said of a claim (CLP02, CLP03/04/05, claim CAS, per line SVC03
  and CAS, the remittance date) when the next payer's claim was built from it: codes and amounts, no PHI.
  One per claim; history, written once (the app role may only INSERT and SELECT).

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0035_secondary"
down_revision = "0034_denials"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

UPGRADE = [
    """
    ALTER TABLE rcm.claim
      ADD COLUMN primary_claim_id uuid,
      ADD CONSTRAINT fk_claim_tenant_id_primary_claim_id_claim
        FOREIGN KEY (tenant_id, primary_claim_id) REFERENCES rcm.claim (tenant_id, id),
      ADD CONSTRAINT ck_claim_primary_claim
        CHECK (primary_claim_id IS NULL OR responsibility <> 'primary')
    """,
    """
    CREATE TABLE rcm.claim_adjudication (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      claim_id uuid NOT NULL,
      x12_file_id uuid,
      payer_id text NOT NULL,
      claim_status text NOT NULL,
      payer_claim_control_number text,
      charge_cents bigint NOT NULL,
      paid_cents bigint NOT NULL,
      patient_responsibility_cents bigint,
      adjudicated_on date NOT NULL,
      adjustments jsonb NOT NULL,
      lines jsonb NOT NULL,
      CONSTRAINT pk_claim_adjudication PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_claim_adjudication_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_claim_adjudication_tenant_id_claim_id_claim
        FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT fk_claim_adjudication_tenant_id_x12_file_id_x12_file
        FOREIGN KEY (tenant_id, x12_file_id) REFERENCES rcm.x12_file (tenant_id, id),
      CONSTRAINT uq_claim_adjudication_tenant_id_claim_id UNIQUE (tenant_id, claim_id)
    )
    """,
    "ALTER TABLE rcm.claim_adjudication ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.claim_adjudication FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON rcm.claim_adjudication USING ({_POLICY}) WITH CHECK ({_POLICY})",
    "GRANT SELECT, INSERT ON rcm.claim_adjudication TO rcm_app",
]

DOWNGRADE = [
    "DROP TABLE rcm.claim_adjudication",
    "ALTER TABLE rcm.claim DROP CONSTRAINT ck_claim_primary_claim,"
    " DROP CONSTRAINT fk_claim_tenant_id_primary_claim_id_claim, DROP COLUMN primary_claim_id",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
