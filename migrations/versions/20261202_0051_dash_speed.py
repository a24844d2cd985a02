"""Claim events by state and time, so the KPI rates read one period's moves instead of every claim's history.

Revision ID: 0051_dash_speed
Revises: 0048_remit_speed
Create Date: 2026-12-02

- ``ix_claim_event_state_time``: (tenant_id, to_state, created_at), the claim and cause included. The
  first submissions and first adjudications of a period (``rcm.reporting.kpi_repository``) are one range of
  it per state; whether a claim had one before the period is a probe of ``ix_claim_event_claim``.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0051_dash_speed"
down_revision = "0048_remit_speed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_claim_event_state_time ON rcm.claim_event (tenant_id, to_state, created_at)"
        " INCLUDE (claim_id, cause)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX rcm.ix_claim_event_state_time")
