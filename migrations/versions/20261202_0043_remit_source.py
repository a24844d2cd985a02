"""835 entries point at their source segment; held transaction sets released or discarded; the secondary of
a reversed primary flagged for correction.

Revision ID: 0043_remit_source
Revises: 0045_saved_views
Create Date: 2026-12-02

- ``ledger_entry.segment_index``: the source segment's own position within its transaction set (ST is 1),
  beside ``segment_position`` (the CLP's or PLB adjustment's ordinal). Existing rows keep NULL.
- ``remittance_release``: a supervisor's or biller's decision on a held transaction set, once per set
  (``uq_remittance_release``: a retry finds it): ``posted`` (posted whole after review; the amount by which
  BPR02 still differs from what the claims explain went to ``unapplied``) or ``discarded``, with the reason
  and who decided. Tenant-owned, RLS forced, append-only as the ledger is (``rcm.ledger_refuse_change``),
  the app role granted SELECT and INSERT.
- Ledger posting source ``remittance_imbalance`` (that difference, released by a reviewer).
- Billing-queue reason ``cob_correction``: a primary's payment was reversed after its secondary was built.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0043_remit_source"
down_revision = "0045_saved_views"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_SOURCES_BEFORE = (
    "'claim_built', 'claim_voided', 'claim_replaced', 'remittance_claim', 'provider_adjustment', "
    "'patient_payment', 'patient_refund', 'small_balance_write_off', 'coordination_of_benefits', "
    "'coordination_reversed'"
)
_SOURCES = _SOURCES_BEFORE + ", 'remittance_imbalance'"
_REASONS_BEFORE = (
    "'scrub_failure', 'rejection', 'eligibility', 'dead_letter', 'follow_up', 'enrollment', 'denial'"
)
_REASONS = _REASONS_BEFORE + ", 'cob_correction'"

RELEASE = """
CREATE TABLE rcm.remittance_release (
  tenant_id uuid NOT NULL,
  id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  remittance_id uuid NOT NULL,
  action text NOT NULL,
  reason text NOT NULL,
  imbalance_cents bigint NOT NULL,
  actor text NOT NULL,
  CONSTRAINT pk_remittance_release PRIMARY KEY (tenant_id, id),
  CONSTRAINT fk_remittance_release_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
  CONSTRAINT fk_remittance_release_tenant_id_remittance_id_remittance
    FOREIGN KEY (tenant_id, remittance_id) REFERENCES rcm.remittance (tenant_id, id),
  CONSTRAINT uq_remittance_release UNIQUE (tenant_id, remittance_id),
  CONSTRAINT ck_remittance_release_action CHECK (action IN ('posted', 'discarded')),
  CONSTRAINT ck_remittance_release_imbalance CHECK (action = 'posted' OR imbalance_cents = 0)
)
"""


def _check(table: str, name: str, column: str, listed: str) -> None:
    op.execute(f"ALTER TABLE rcm.{table} DROP CONSTRAINT {name}")
    op.execute(f"ALTER TABLE rcm.{table} ADD CONSTRAINT {name} CHECK ({column} IN ({listed}))")


def upgrade() -> None:
    op.execute("ALTER TABLE rcm.ledger_entry ADD COLUMN segment_index integer")
    op.execute(RELEASE)
    op.execute("ALTER TABLE rcm.remittance_release ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rcm.remittance_release FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON rcm.remittance_release USING ({_POLICY}) WITH CHECK ({_POLICY})"
    )
    op.execute("GRANT SELECT, INSERT ON rcm.remittance_release TO rcm_app")
    op.execute(
        "CREATE TRIGGER remittance_release_no_update_delete BEFORE UPDATE OR DELETE ON rcm.remittance_release"
        " FOR EACH ROW EXECUTE FUNCTION rcm.ledger_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER remittance_release_no_truncate BEFORE TRUNCATE ON rcm.remittance_release"
        " FOR EACH STATEMENT EXECUTE FUNCTION rcm.ledger_refuse_change()"
    )
    _check("ledger_posting", "ck_ledger_posting_source", "source", _SOURCES)
    _check("work_item", "ck_work_item_reason", "reason", _REASONS)


def downgrade() -> None:
    _check("work_item", "ck_work_item_reason", "reason", _REASONS_BEFORE)
    _check("ledger_posting", "ck_ledger_posting_source", "source", _SOURCES_BEFORE)
    op.execute("DROP TABLE rcm.remittance_release")
    op.execute("ALTER TABLE rcm.ledger_entry DROP COLUMN segment_index")
