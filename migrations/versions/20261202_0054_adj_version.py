"""A claim's kept adjudications are versioned: a reversal (835 CLP02 22) supersedes the one its next payer's
claim was built from, and the correction that follows is the current one, so the next payer's 837 (loops
2320/2430, a replacement's included) reports what stands.

Revision ID: 0054_adj_version
Revises: 0051_dash_speed
Create Date: 2026-12-02

- ``claim_adjudication.version``: 1 for the adjudication a next payer's claim was built from, then one more
  for each reversal and correction of that claim's payment; unique per claim (instead of one row per claim).
  Still history, written once: the app role may only INSERT and SELECT.

Downgrade keeps version 1 of each claim (the first adjudication, as before).

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0054_adj_version"
down_revision = "0051_dash_speed"
branch_labels = None
depends_on = None

UPGRADE = [
    """
    ALTER TABLE rcm.claim_adjudication
      ADD COLUMN version smallint NOT NULL DEFAULT 1,
      DROP CONSTRAINT uq_claim_adjudication_tenant_id_claim_id,
      ADD CONSTRAINT uq_claim_adjudication_tenant_id_claim_id_version UNIQUE (tenant_id, claim_id, version),
      ADD CONSTRAINT ck_claim_adjudication_version CHECK (version >= 1)
    """,
    "ALTER TABLE rcm.claim_adjudication ALTER COLUMN version DROP DEFAULT",
]

DOWNGRADE = [
    "DELETE FROM rcm.claim_adjudication WHERE version > 1",
    """
    ALTER TABLE rcm.claim_adjudication
      DROP CONSTRAINT ck_claim_adjudication_version,
      DROP CONSTRAINT uq_claim_adjudication_tenant_id_claim_id_version,
      ADD CONSTRAINT uq_claim_adjudication_tenant_id_claim_id UNIQUE (tenant_id, claim_id),
      DROP COLUMN version
    """,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
