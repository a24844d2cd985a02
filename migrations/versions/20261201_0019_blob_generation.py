"""Blob generations: a blob can be re-sealed under a newer key without readers ever seeing a mix.

Revision ID: 0019_blob_generation
Revises: 0018_scrubber
Create Date: 2026-12-01

- ``blob.generation``: which set of ciphertext chunks (``postgres``) or which file (``directory``) holds the
  blob now. Re-encryption after a key rotation writes a whole new generation beside the current one, then
  flips ``key_version``, ``salt`` and ``generation`` in one UPDATE; existing rows are generation 0, whose
  file keeps its old name (``<blob id>``), so nothing on disk moves.
- ``blob.superseded_since``: set when that flip leaves an older generation's chunks behind in
  ``blob_chunk`` (a reader that started before the flip may still be reading them); the blob sweep deletes
  them once the grace period has passed and clears it.
- ``blob_chunk.generation``: part of the key, so two generations of one blob can coexist.
- ``ix_blob_key_version``: the re-encryption job finds and counts a tenant's blobs under an older key.
- ``ix_blob_superseded``: the sweep finds blobs with superseded chunks without reading every blob.

Grants and RLS are unchanged (the app role already has SELECT, INSERT, UPDATE, DELETE on ``blob`` and
SELECT, INSERT, DELETE on ``blob_chunk``). The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0019_blob_generation"
down_revision = "0018_scrubber"
branch_labels = None
depends_on = None

UPGRADE = [
    "ALTER TABLE rcm.blob ADD COLUMN generation integer NOT NULL DEFAULT 0,"
    " ADD COLUMN superseded_since timestamptz",
    "ALTER TABLE rcm.blob_chunk ADD COLUMN generation integer NOT NULL DEFAULT 0",
    "ALTER TABLE rcm.blob_chunk DROP CONSTRAINT pk_blob_chunk,"
    " ADD CONSTRAINT pk_blob_chunk PRIMARY KEY (tenant_id, blob_id, generation, seq)",
    "CREATE INDEX ix_blob_key_version ON rcm.blob (tenant_id, key_version)",
    "CREATE INDEX ix_blob_superseded ON rcm.blob (tenant_id, superseded_since)"
    " WHERE superseded_since IS NOT NULL",
]

DOWNGRADE = [
    "DROP INDEX rcm.ix_blob_superseded",
    "DROP INDEX rcm.ix_blob_key_version",
    # Only the current generation of each blob survives a downgrade (the old key had one set of chunks).
    "DELETE FROM rcm.blob_chunk AS c USING rcm.blob AS b"
    " WHERE b.tenant_id = c.tenant_id AND b.id = c.blob_id AND c.generation <> b.generation",
    "ALTER TABLE rcm.blob_chunk DROP CONSTRAINT pk_blob_chunk,"
    " ADD CONSTRAINT pk_blob_chunk PRIMARY KEY (tenant_id, blob_id, seq)",
    "ALTER TABLE rcm.blob_chunk DROP COLUMN generation",
    "ALTER TABLE rcm.blob DROP COLUMN superseded_since, DROP COLUMN generation",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
