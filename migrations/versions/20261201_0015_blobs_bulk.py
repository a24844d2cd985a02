"""Encrypted blobs, encounter documents and bulk intake jobs.

Revision ID: 0015_blobs_bulk
Revises: 0013_least_privilege
Create Date: 2026-12-01

- ``blob`` (tenant-owned): one file holding PHI, stored encrypted in chunks (streaming AEAD, see
  ``rcm.crypto.stream``): its key version, salt, chunk size and count, plaintext size and SHA-256, and where
  the chunks live (``postgres``: ``blob_chunk`` rows; ``directory``: a file named by opaque ids).
- ``blob_chunk`` (tenant-owned): the ciphertext chunks of a ``postgres`` blob, keyed by (tenant, blob, seq).
- ``encounter_document`` (tenant-owned): a document (PDF, image) attached to an encounter, pointing at its blob.
  No file name is kept (a file name may hold PHI).
- ``bulk_intake`` (tenant-owned): an NDJSON or CSV upload run as a job: progress counters, the cursor (last
  committed line), who submitted it. One job per file content per tenant (``file_sha256``).
- ``bulk_intake_line`` (tenant-owned): one row per processed line, keyed by (tenant, job, line number), written
  in the same transaction as the line's records and the cursor, so a resumed job never creates twice.

RLS enabled and forced with the usual policy; the DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0015_blobs_bulk"
down_revision = "0014_code_sets"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

_TABLES = {
    "blob": "SELECT, INSERT, UPDATE, DELETE",
    "blob_chunk": "SELECT, INSERT, DELETE",
    "encounter_document": "SELECT, INSERT",
    "bulk_intake": "SELECT, INSERT, UPDATE",
    "bulk_intake_line": "SELECT, INSERT",
}

UPGRADE = [
    """
    CREATE TABLE rcm.blob (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      content_type text NOT NULL,
      backend text NOT NULL,
      state text NOT NULL,
      key_version integer NOT NULL,
      salt bytea NOT NULL,
      chunk_size integer NOT NULL,
      chunk_count integer NOT NULL,
      size bigint NOT NULL,
      sha256 bytea,
      CONSTRAINT pk_blob PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_blob_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT ck_blob_backend CHECK (backend IN ('postgres', 'directory')),
      CONSTRAINT ck_blob_state CHECK (state IN ('writing', 'complete'))
    )
    """,
    """
    CREATE TABLE rcm.blob_chunk (
      tenant_id uuid NOT NULL,
      blob_id uuid NOT NULL,
      seq integer NOT NULL,
      data bytea NOT NULL,
      CONSTRAINT pk_blob_chunk PRIMARY KEY (tenant_id, blob_id, seq),
      CONSTRAINT fk_blob_chunk_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_blob_chunk_tenant_id_blob FOREIGN KEY (tenant_id, blob_id)
        REFERENCES rcm.blob (tenant_id, id) ON DELETE CASCADE
    )
    """,
    """
    CREATE TABLE rcm.encounter_document (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      encounter_id uuid NOT NULL,
      blob_id uuid NOT NULL,
      content_type text NOT NULL,
      size bigint NOT NULL,
      sha256 bytea NOT NULL,
      CONSTRAINT pk_encounter_document PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_encounter_document_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_encounter_document_tenant_id_encounter FOREIGN KEY (tenant_id, encounter_id)
        REFERENCES rcm.encounter (tenant_id, id),
      CONSTRAINT fk_encounter_document_tenant_id_blob FOREIGN KEY (tenant_id, blob_id)
        REFERENCES rcm.blob (tenant_id, id)
    )
    """,
    "CREATE INDEX ix_encounter_document ON rcm.encounter_document (tenant_id, encounter_id, created_at)",
    """
    CREATE TABLE rcm.bulk_intake (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      blob_id uuid NOT NULL,
      file_sha256 bytea NOT NULL,
      format text NOT NULL,
      status text NOT NULL,
      lines_read integer NOT NULL,
      accepted integer NOT NULL,
      rejected integer NOT NULL,
      cursor_line integer NOT NULL,
      submitted_by_kind text NOT NULL,
      submitted_by text NOT NULL,
      submitted_client_id text,
      submitted_user_id uuid,
      failure text,
      CONSTRAINT pk_bulk_intake PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_bulk_intake_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_bulk_intake_tenant_id_blob FOREIGN KEY (tenant_id, blob_id)
        REFERENCES rcm.blob (tenant_id, id),
      CONSTRAINT uq_bulk_intake_tenant_id_file_sha256 UNIQUE (tenant_id, file_sha256),
      CONSTRAINT ck_bulk_intake_format CHECK (format IN ('ndjson', 'csv')),
      CONSTRAINT ck_bulk_intake_status CHECK (status IN ('queued', 'running', 'done', 'failed'))
    )
    """,
    "CREATE INDEX ix_bulk_intake_list ON rcm.bulk_intake (tenant_id, created_at, id)",
    """
    CREATE TABLE rcm.bulk_intake_line (
      tenant_id uuid NOT NULL,
      job_id uuid NOT NULL,
      line_no integer NOT NULL,
      outcome text NOT NULL,
      encounter_id uuid,
      errors jsonb,
      CONSTRAINT pk_bulk_intake_line PRIMARY KEY (tenant_id, job_id, line_no),
      CONSTRAINT fk_bulk_intake_line_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_bulk_intake_line_tenant_id_bulk_intake FOREIGN KEY (tenant_id, job_id)
        REFERENCES rcm.bulk_intake (tenant_id, id),
      CONSTRAINT ck_bulk_intake_line_outcome CHECK (outcome IN ('accepted', 'rejected'))
    )
    """,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)
    for table, grants in _TABLES.items():
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT {grants} ON rcm.{table} TO rcm_app")


def downgrade() -> None:
    for table in reversed(list(_TABLES)):
        op.execute(f"DROP TABLE rcm.{table}")
