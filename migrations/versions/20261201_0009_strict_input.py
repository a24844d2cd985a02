"""Providers carry whether their NPI passes its check digit (accepted at intake, flagged for the scrub).

Revision ID: 0009_strict_input
Revises: 0008_audit_anchoring
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0009_strict_input"
down_revision = "0008_audit_anchoring"
branch_labels = None
depends_on = None


def _npi_check_digit_valid(npi: str) -> bool:
    # Frozen copy of the CMS rule (Luhn over the 10 digits prefixed with the card issuer id 80840), as it
    # stood when this revision was written.
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed("80840" + npi[:9])):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])


def upgrade() -> None:
    op.execute("ALTER TABLE rcm.provider ADD COLUMN npi_valid boolean NOT NULL DEFAULT true")
    # Row-level security is forced on the owner too: open every tenant's rows for this transaction only.
    op.execute(
        "SELECT set_config('rcm.tenant_id', coalesce((SELECT string_agg(id::text, ',') FROM rcm.tenant), ''),"
        " true)"
    )
    bind = op.get_bind()
    rows = bind.execute(text("SELECT tenant_id, id, npi FROM rcm.provider")).all()
    invalid = [
        {"t": tenant_id, "i": row_id} for tenant_id, row_id, npi in rows if not _npi_check_digit_valid(npi)
    ]
    if invalid:
        bind.execute(
            text("UPDATE rcm.provider SET npi_valid = false WHERE tenant_id = :t AND id = :i"), invalid
        )
    op.execute("SELECT set_config('rcm.tenant_id', '', true)")
    # Lookups by name find an existing provider before a mistyped NPI makes a second one.
    op.execute("CREATE INDEX provider_name_idx ON rcm.provider (tenant_id, lower(name))")


def downgrade() -> None:
    op.execute("DROP INDEX rcm.provider_name_idx")
    op.execute("ALTER TABLE rcm.provider DROP COLUMN npi_valid")
