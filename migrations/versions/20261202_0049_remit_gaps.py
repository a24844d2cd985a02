"""A held transaction set routed to the practice it belongs to (or to the unassigned-ERA queue) on review.

Revision ID: 0049_remit_gaps
Revises: 0043_remit_source
Create Date: 2026-12-02

- ``remittance_release.action`` may be ``routed``: the set was the payment of another practice (the payer's
  payee routing was wrong); the reviewer routed it to ``routed_tenant_id``, where it posted or held as an
  incoming set would, or, with ``routed_tenant_id`` NULL, to the unassigned-ERA queue. Only a routed decision
  names a practice (``ck_remittance_release_routed``). The row stays append-only.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0049_remit_gaps"
down_revision = "0043_remit_source"
branch_labels = None
depends_on = None

_ACTIONS_BEFORE = "'posted', 'discarded'"
_ACTIONS = _ACTIONS_BEFORE + ", 'routed'"


def _actions(listed: str) -> None:
    op.execute("ALTER TABLE rcm.remittance_release DROP CONSTRAINT ck_remittance_release_action")
    op.execute(
        f"ALTER TABLE rcm.remittance_release ADD CONSTRAINT ck_remittance_release_action CHECK (action IN ({listed}))"
    )


def upgrade() -> None:
    _actions(_ACTIONS)
    op.execute(
        "ALTER TABLE rcm.remittance_release ADD COLUMN routed_tenant_id uuid,"
        " ADD CONSTRAINT fk_remittance_release_routed_tenant_id_tenant"
        " FOREIGN KEY (routed_tenant_id) REFERENCES rcm.tenant (id),"
        " ADD CONSTRAINT ck_remittance_release_routed CHECK (action = 'routed' OR routed_tenant_id IS NULL)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE rcm.remittance_release DROP CONSTRAINT ck_remittance_release_routed,"
        " DROP CONSTRAINT fk_remittance_release_routed_tenant_id_tenant, DROP COLUMN routed_tenant_id"
    )
    _actions(_ACTIONS_BEFORE)
