"""The unassigned-ERA queue and the deposits of EFT reassociation (issue 8, points 1-2).

Revision ID: 0038_era_queue
Revises: 0037_cob_transfer
Create Date: 2026-12-02

- ``unassigned_era_file``: an 835 file one of whose payments (transaction sets) matched no practice, or
  several. Platform-level (no practice yet): the file is kept encrypted under a data key of its own
  (AES-256-GCM, the row id bound as associated data), that key wrapped by the key provider's KEK with the
  purpose and row id as context; no PHI in clear. One row per file content (``sha256``).
- ``unassigned_remittance``: each such set, by its place in the file, with what staff need to route it and
  no PHI (payer, TRN02, BPR02, payee NPI and the TIN's last four, the reason); ``candidates``: the practices
  the uploading biller could route among (empty for an operator's import: platform admins only); routed once
  (``routed_tenant_id``, ``routed_at``, ``routed_by``).
- ``deposit``: a bank deposit a practice reports (date, cents, trace number), matched to 835 payments by
  the EFT reassociation report. Tenant-owned, RLS forced, append-only (the ledger's trigger).
"""

from __future__ import annotations

from alembic import op

revision = "0038_era_queue"
down_revision = "0037_cob_transfer"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

TABLES = [
    """
    CREATE TABLE rcm.unassigned_era_file (
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      sha256 bytea NOT NULL,
      size integer NOT NULL,
      kek_id text NOT NULL,
      wrapped_key bytea NOT NULL,
      ciphertext bytea NOT NULL,
      CONSTRAINT pk_unassigned_era_file PRIMARY KEY (id),
      CONSTRAINT uq_unassigned_era_file_sha256 UNIQUE (sha256)
    )
    """,
    """
    CREATE TABLE rcm.unassigned_remittance (
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      file_id uuid NOT NULL,
      set_index integer NOT NULL,
      set_control_number text NOT NULL,
      trace_number text NOT NULL,
      payer_name text NOT NULL,
      total_paid_cents bigint NOT NULL,
      payee_npi text,
      payee_tin_last4 text,
      reason text NOT NULL,
      candidates uuid[] NOT NULL,
      received_by text NOT NULL,
      routed_tenant_id uuid,
      routed_at timestamptz,
      routed_by text,
      CONSTRAINT pk_unassigned_remittance PRIMARY KEY (id),
      CONSTRAINT fk_unassigned_remittance_file_id_unassigned_era_file
        FOREIGN KEY (file_id) REFERENCES rcm.unassigned_era_file (id),
      CONSTRAINT fk_unassigned_remittance_routed_tenant_id_tenant
        FOREIGN KEY (routed_tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_unassigned_remittance_set UNIQUE (file_id, set_index),
      CONSTRAINT ck_unassigned_remittance_routed
        CHECK ((routed_tenant_id IS NULL) = (routed_at IS NULL) AND (routed_at IS NULL) = (routed_by IS NULL))
    )
    """,
    "CREATE INDEX ix_unassigned_remittance_open ON rcm.unassigned_remittance (created_at, id) "
    "WHERE routed_at IS NULL",
    """
    CREATE TABLE rcm.deposit (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      deposited_on date NOT NULL,
      amount_cents bigint NOT NULL,
      trace_number text,
      actor text NOT NULL,
      CONSTRAINT pk_deposit PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_deposit_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT ck_deposit_amount CHECK (amount_cents > 0)
    )
    """,
    "CREATE INDEX ix_deposit_date ON rcm.deposit (tenant_id, deposited_on)",
]


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    op.execute("GRANT SELECT, INSERT ON rcm.unassigned_era_file TO rcm_app")
    op.execute("GRANT SELECT, INSERT, UPDATE ON rcm.unassigned_remittance TO rcm_app")
    op.execute("ALTER TABLE rcm.deposit ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rcm.deposit FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON rcm.deposit USING ({_POLICY}) WITH CHECK ({_POLICY})")
    op.execute("GRANT SELECT, INSERT ON rcm.deposit TO rcm_app")
    op.execute(
        "CREATE TRIGGER deposit_no_update_delete BEFORE UPDATE OR DELETE ON rcm.deposit "
        "FOR EACH ROW EXECUTE FUNCTION rcm.ledger_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER deposit_no_truncate BEFORE TRUNCATE ON rcm.deposit "
        "FOR EACH STATEMENT EXECUTE FUNCTION rcm.ledger_refuse_change()"
    )


def downgrade() -> None:
    op.execute("DROP TABLE rcm.deposit")
    op.execute("DROP TABLE rcm.unassigned_remittance")
    op.execute("DROP TABLE rcm.unassigned_era_file")
