"""The open claims' AR index keyed by date of service too, so AR aging sums each bucket from a range of it.

Revision ID: 0047_report_speed
Revises: 0050_report_gaps
Create Date: 2026-12-02

- ``ix_report_claim_balance_open``: (tenant_id, payer_id, service_date), the other columns the AR aging reads
  still included, the same partial predicate (open claims only). On the date-of-service basis a payer's
  bucket is then one range of the index (``rcm.reporting.repository``): every open claim read once, by the
  index alone, summed with no per-row grouping. The same size as the index it replaces.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0047_report_speed"
down_revision = "0050_report_gaps"
branch_labels = None
depends_on = None

_OPEN = "WHERE insurance_cents <> 0 OR patient_cents <> 0"


def upgrade() -> None:
    op.execute("DROP INDEX rcm.ix_report_claim_balance_open")
    op.execute(
        "CREATE INDEX ix_report_claim_balance_open ON rcm.report_claim_balance (tenant_id, payer_id, service_date)"
        f" INCLUDE (submitted_on, insurance_cents, patient_cents) {_OPEN}"
    )


def downgrade() -> None:
    op.execute("DROP INDEX rcm.ix_report_claim_balance_open")
    op.execute(
        "CREATE INDEX ix_report_claim_balance_open ON rcm.report_claim_balance (tenant_id, payer_id)"
        f" INCLUDE (service_date, submitted_on, insurance_cents, patient_cents) {_OPEN}"
    )
