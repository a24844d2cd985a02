"""Coordination of benefits on the ledger: a next payer's claim takes over the patient's share it bills.

Revision ID: 0037_cob_transfer
Revises: 0036_patients
Create Date: 2026-12-02

- Two ledger posting sources: ``coordination_of_benefits`` (a secondary or tertiary claim built from the
  previous payer's 835 moves that claim's remaining patient responsibility off the patient's receivable onto
  its own insurance receivable) and ``coordination_reversed`` (a void or replacement of that claim moves it
  back). Every source allowed before stays allowed; no account is added.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0037_cob_transfer"
down_revision = "0036_patients"
branch_labels = None
depends_on = None

_SOURCES_BEFORE = (
    "'claim_built', 'claim_voided', 'claim_replaced', 'remittance_claim', 'provider_adjustment', "
    "'patient_payment', 'patient_refund', 'small_balance_write_off'"
)
_SOURCES = _SOURCES_BEFORE + ", 'coordination_of_benefits', 'coordination_reversed'"


def _sources(listed: str) -> None:
    op.execute("ALTER TABLE rcm.ledger_posting DROP CONSTRAINT ck_ledger_posting_source")
    op.execute(
        f"ALTER TABLE rcm.ledger_posting ADD CONSTRAINT ck_ledger_posting_source CHECK (source IN ({listed}))"
    )


def upgrade() -> None:
    _sources(_SOURCES)


def downgrade() -> None:
    _sources(_SOURCES_BEFORE)
