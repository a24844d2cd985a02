"""Raw X12 kept: every interchange we send or receive, encrypted as a blob, linked to what it produced.

Revision ID: 0021_x12_files
Revises: 0020_claims

``rcm.x12_file`` is tenant-owned (RLS forced): its bytes are a blob (encrypted with the tenant's keys: an 837,
a 271 or an 835 holds PHI), and the row holds only what the envelope says in clear (kind, ISA13, sender and
receiver ids), the SHA-256 of the plaintext (a file received twice is kept once) and what it produced: the
submission batch an 837 carried or a 999 acknowledged, and, on ``rcm.claim_event``, the file that moved a
claim. The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0021_x12_files"
down_revision = "0020_claims"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_KINDS = "'837P', '837I', '835', '999', '277CA', '270', '271', '276', '277', 'unknown'"

STATEMENTS = [
    f"""
    CREATE TABLE rcm.x12_file (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      direction text NOT NULL,
      kind text NOT NULL,
      blob_id uuid NOT NULL,
      sha256 bytea NOT NULL,
      size integer NOT NULL,
      interchange_control_number integer,
      sender_id text,
      receiver_id text,
      connector text,
      submission_batch_id uuid,
      status text NOT NULL,
      error text,
      processed_at timestamptz,
      CONSTRAINT pk_x12_file PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_x12_file_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_x12_file_tenant_id_blob_id_blob
        FOREIGN KEY (tenant_id, blob_id) REFERENCES rcm.blob (tenant_id, id),
      CONSTRAINT fk_x12_file_tenant_id_submission_batch_id_submission_batch
        FOREIGN KEY (tenant_id, submission_batch_id) REFERENCES rcm.submission_batch (tenant_id, id),
      CONSTRAINT uq_x12_file_tenant_id_direction_sha256 UNIQUE (tenant_id, direction, sha256),
      CONSTRAINT ck_x12_file_direction CHECK (direction IN ('outbound', 'inbound')),
      CONSTRAINT ck_x12_file_kind CHECK (kind IN ({_KINDS})),
      CONSTRAINT ck_x12_file_status CHECK (status IN ('kept', 'processed', 'refused')),
      CONSTRAINT ck_x12_file_size CHECK (size >= 0)
    )
    """,
    "CREATE INDEX ix_x12_file_batch ON rcm.x12_file (tenant_id, submission_batch_id)",
    "CREATE INDEX ix_x12_file_created ON rcm.x12_file (tenant_id, created_at, id)",
    "ALTER TABLE rcm.claim_event ADD COLUMN x12_file_id uuid",
    """
    ALTER TABLE rcm.claim_event ADD CONSTRAINT fk_claim_event_tenant_id_x12_file_id_x12_file
      FOREIGN KEY (tenant_id, x12_file_id) REFERENCES rcm.x12_file (tenant_id, id)
    """,
    "ALTER TABLE rcm.x12_file ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.x12_file FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON rcm.x12_file USING ({_POLICY}) WITH CHECK ({_POLICY})",
    # Kept files are never deleted by the app; their processing status moves on.
    "GRANT SELECT, INSERT, UPDATE ON rcm.x12_file TO rcm_app",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("ALTER TABLE rcm.claim_event DROP CONSTRAINT fk_claim_event_tenant_id_x12_file_id_x12_file")
    op.execute("ALTER TABLE rcm.claim_event DROP COLUMN x12_file_id")
    op.execute("DROP TABLE rcm.x12_file")
