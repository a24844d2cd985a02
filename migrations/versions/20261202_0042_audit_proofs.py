"""Audit inclusion proofs: a checkpoint signs the RFC 6962 Merkle root of the chain range it covers.

Revision ID: 0042_audit_proofs
Revises: 0046_statement_events
Create Date: 2026-12-02

- ``audit_checkpoint`` gains ``first_seq`` and ``merkle_root``: the checkpoint covers the tenant's events
  ``first_seq..seq`` (from just after its previous checkpoint) and signs the Merkle tree hash of their chain
  hashes, so one event's inclusion is proven with log2(n) hashes and no other event. Both stay NULL on the
  checkpoints written before (version 1, still verified as before); both or neither are set.
- The table's grants are table-level (SELECT for ``rcm_app``; SELECT, INSERT for ``rcm_audit``, migrations
  0003_audit and 0008_audit_anchoring) and cover the new columns; its append-only triggers and RLS policy
  are unchanged. Adding nullable columns rewrites nothing and fires no row trigger.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0042_audit_proofs"
down_revision = "0046_statement_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE rcm.audit_checkpoint ADD COLUMN first_seq bigint, ADD COLUMN merkle_root bytea")
    op.execute(
        "ALTER TABLE rcm.audit_checkpoint ADD CONSTRAINT ck_audit_checkpoint_merkle CHECK ("
        " (first_seq IS NULL AND merkle_root IS NULL)"
        " OR (first_seq >= 1 AND first_seq <= seq AND octet_length(merkle_root) = 32))"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE rcm.audit_checkpoint DROP CONSTRAINT ck_audit_checkpoint_merkle")
    op.execute("ALTER TABLE rcm.audit_checkpoint DROP COLUMN merkle_root, DROP COLUMN first_seq")
