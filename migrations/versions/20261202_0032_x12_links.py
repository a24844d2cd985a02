"""Links from kept X12 files to what they affected.

Revision ID: 0032_x12_links
Revises: 0029_eligibility
Create Date: 2026-12-02

- ``x12_file_link``: one row per thing a kept interchange is about: the submission batch an 837 carried or
  a 999/277CA/835 answered, each claim a received file matched (whether or not it moved the claim), and for
  an 835 the check or EFT trace number (TRN02) it reassociates with. Exactly one of the three per row. No PHI:
  ids and the payer's payment trace number only. ``x12_file.submission_batch_id`` stays (the first batch), the
  links say all of them.

Tenant-owned with RLS enabled and forced with the tenant policy, and its grants, here. The app role only
appends: a link records what a file did. The DDL is frozen as SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0032_x12_links"
down_revision = "0029_eligibility"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

TABLES = [
    """
    CREATE TABLE rcm.x12_file_link (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      x12_file_id uuid NOT NULL,
      submission_batch_id uuid,
      claim_id uuid,
      check_trace_number text,
      CONSTRAINT pk_x12_file_link PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_x12_file_link_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_x12_file_link_tenant_id_x12_file_id_x12_file
        FOREIGN KEY (tenant_id, x12_file_id) REFERENCES rcm.x12_file (tenant_id, id),
      CONSTRAINT fk_x12_file_link_tenant_id_submission_batch_id_submission_batch
        FOREIGN KEY (tenant_id, submission_batch_id) REFERENCES rcm.submission_batch (tenant_id, id),
      CONSTRAINT fk_x12_file_link_tenant_id_claim_id_claim
        FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT ck_x12_file_link_one_target
        CHECK (num_nonnulls(submission_batch_id, claim_id, check_trace_number) = 1),
      CONSTRAINT ck_x12_file_link_check_trace_number
        CHECK (check_trace_number IS NULL OR length(check_trace_number) BETWEEN 1 AND 50)
    )
    """,
    """
    CREATE UNIQUE INDEX uq_x12_file_link_batch ON rcm.x12_file_link (tenant_id, submission_batch_id, x12_file_id)
      WHERE submission_batch_id IS NOT NULL
    """,
    """
    CREATE UNIQUE INDEX uq_x12_file_link_claim ON rcm.x12_file_link (tenant_id, claim_id, x12_file_id)
      WHERE claim_id IS NOT NULL
    """,
    """
    CREATE UNIQUE INDEX uq_x12_file_link_trace ON rcm.x12_file_link (tenant_id, check_trace_number, x12_file_id)
      WHERE check_trace_number IS NOT NULL
    """,
    "CREATE INDEX ix_x12_file_link_file ON rcm.x12_file_link (tenant_id, x12_file_id)",
]

GRANTS = {"x12_file_link": "SELECT, INSERT"}


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT {privileges} ON rcm.{table} TO rcm_app")


def downgrade() -> None:
    op.execute("DROP TABLE rcm.x12_file_link")
