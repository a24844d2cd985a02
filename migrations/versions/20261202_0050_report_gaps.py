"""The KPIs read the ledger by posting time within bounds: an index on it, and receivables always name a claim.

Revision ID: 0050_report_gaps
Revises: 0049_remit_gaps
Create Date: 2026-12-02

- ``ix_ledger_entry_created_at`` on ``rcm.ledger_entry (tenant_id, created_at)``: the KPIs' money flows
  (charges, payments and contractual adjustments posted in a period, charges of the 90 days ending with
  it), the receivable entries posted after a period's end and the forecast's payer payments are ranges of
  posting time; without it each read every entry of the practice up to the period's end.
- ``ck_ledger_entry_receivable_claim``: an insurance or patient receivable entry names its claim (every
  posting path already does). The KPIs' AR at a period's end is the claims' open balances now
  (``report_claim_balance``, which sums receivable entries per claim) less the receivable entries posted
  since the end; the constraint makes that equal, to the cent, the sum of every receivable entry posted
  before the end. Added NOT VALID, then validated (no long lock on the ledger's writers).

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0050_report_gaps"
down_revision = "0049_remit_gaps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_ledger_entry_created_at ON rcm.ledger_entry (tenant_id, created_at)")
    op.execute(
        "ALTER TABLE rcm.ledger_entry ADD CONSTRAINT ck_ledger_entry_receivable_claim"
        " CHECK (claim_id IS NOT NULL OR account NOT IN ('insurance_receivable', 'patient_receivable'))"
        " NOT VALID"
    )
    op.execute("ALTER TABLE rcm.ledger_entry VALIDATE CONSTRAINT ck_ledger_entry_receivable_claim")


def downgrade() -> None:
    op.execute("ALTER TABLE rcm.ledger_entry DROP CONSTRAINT ck_ledger_entry_receivable_claim")
    op.execute("DROP INDEX rcm.ix_ledger_entry_created_at")
