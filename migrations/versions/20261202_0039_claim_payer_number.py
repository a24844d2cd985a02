"""An index on the payer's claim control number, for answers matched by it.

Revision ID: 0039_claim_payer_number
Revises: 0038_era_queue
Create Date: 2026-12-02

- ``ix_claim_payer_control_number`` on ``rcm.claim (tenant_id, payer_claim_control_number)`` where the number
  is known: 277CA and 835 answers name a claim by the payer's number (REF*1K, CLP07) when our CLM01 does not
  find it, and without an index each such lookup read every claim of the practice.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0039_claim_payer_number"
down_revision = "0038_era_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_claim_payer_control_number ON rcm.claim (tenant_id, payer_claim_control_number)"
        " WHERE payer_claim_control_number IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX rcm.ix_claim_payer_control_number")
