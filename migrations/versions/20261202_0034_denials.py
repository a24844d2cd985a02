"""Denials and appeals: what an 835 denied, the appeal clock, appeal letters and their outcome.

Revision ID: 0034_denials
Revises: 0031_ledger
Create Date: 2026-12-02

- ``payer.appeal_days``: the directory's appeal window (days from the remittance date); NULL: the default.
- ``work_item.reason`` may be ``denial``: a denied claim's billing item, due at its appeal deadline.
- ``appeal_template``: a practice's letter templates (sandboxed Jinja text, no PHI), one per name.
- ``appeal``: a letter for one claim (the biller's argument is PHI, sealed per field; the rendered PDF an
  encrypted blob), its submission (date, method, reference) and its outcome (overturned, upheld, partial,
  with the amount recovered).
- ``appeal_attachment``: files sent with an appeal, encrypted blobs as encounter documents are (no names).
- ``denial``: one per denied claim or line of an 835 (CAS group CO/PI/OA with a denial CARC, or a claim
  paid nothing): payer, CPT, group and reason codes, RARCs, category, amount, remittance date, appeal
  deadline, status. Codes, dates and amounts only: no PHI.

Tenant-owned tables with RLS enabled and forced with the tenant policy, and their grants, here. The DDL is
frozen as SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0034_denials"
down_revision = "0031_ledger"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_OLD_REASONS = "'scrub_failure', 'rejection', 'eligibility', 'dead_letter', 'follow_up', 'enrollment'"
_CATEGORIES = (
    "'eligibility', 'authorization', 'coding', 'medical_necessity', 'timely_filing', 'duplicate',"
    " 'bundling', 'missing_information', 'other'"
)

UPGRADE = [
    "ALTER TABLE rcm.payer ADD COLUMN appeal_days integer,"
    " ADD CONSTRAINT ck_payer_appeal_days CHECK (appeal_days BETWEEN 1 AND 3650)",
    "ALTER TABLE rcm.work_item DROP CONSTRAINT ck_work_item_reason",
    f"ALTER TABLE rcm.work_item ADD CONSTRAINT ck_work_item_reason CHECK (reason IN ({_OLD_REASONS}, 'denial'))",
    r"""
    CREATE TABLE rcm.appeal_template (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      name text NOT NULL,
      body text NOT NULL,
      CONSTRAINT pk_appeal_template PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_appeal_template_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_appeal_template_tenant_id_name UNIQUE (tenant_id, name),
      CONSTRAINT ck_appeal_template_name CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
      CONSTRAINT ck_appeal_template_body CHECK (length(body) BETWEEN 1 AND 20000)
    )
    """,
    """
    CREATE TABLE rcm.appeal (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      claim_id uuid NOT NULL,
      template_name text NOT NULL,
      argument bytea,
      letter_blob_id uuid NOT NULL,
      created_by text NOT NULL,
      status text NOT NULL,
      submitted_on date,
      submission_method text,
      submission_reference text,
      outcome text,
      recovered_cents bigint,
      decided_on date,
      CONSTRAINT pk_appeal PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_appeal_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_appeal_tenant_id_claim_id_claim FOREIGN KEY (tenant_id, claim_id)
        REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT fk_appeal_tenant_id_letter_blob_id_blob FOREIGN KEY (tenant_id, letter_blob_id)
        REFERENCES rcm.blob (tenant_id, id),
      CONSTRAINT ck_appeal_status CHECK (status IN ('drafted', 'submitted', 'decided')),
      CONSTRAINT ck_appeal_submission_method
        CHECK (submission_method IN ('mail', 'fax', 'portal', 'electronic')),
      CONSTRAINT ck_appeal_outcome CHECK (outcome IN ('overturned', 'upheld', 'partial')),
      CONSTRAINT ck_appeal_recovered_cents CHECK (recovered_cents >= 0),
      CONSTRAINT ck_appeal_submitted CHECK ((status = 'drafted') = (submitted_on IS NULL)),
      CONSTRAINT ck_appeal_decided CHECK ((status = 'decided') = (outcome IS NOT NULL))
    )
    """,
    "CREATE INDEX ix_appeal_claim ON rcm.appeal (tenant_id, claim_id, created_at)",
    """
    CREATE TABLE rcm.appeal_attachment (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      appeal_id uuid NOT NULL,
      blob_id uuid NOT NULL,
      content_type text NOT NULL,
      size bigint NOT NULL,
      sha256 bytea NOT NULL,
      CONSTRAINT pk_appeal_attachment PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_appeal_attachment_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_appeal_attachment_tenant_id_appeal_id_appeal FOREIGN KEY (tenant_id, appeal_id)
        REFERENCES rcm.appeal (tenant_id, id),
      CONSTRAINT fk_appeal_attachment_tenant_id_blob_id_blob FOREIGN KEY (tenant_id, blob_id)
        REFERENCES rcm.blob (tenant_id, id)
    )
    """,
    "CREATE INDEX ix_appeal_attachment ON rcm.appeal_attachment (tenant_id, appeal_id, created_at)",
    f"""
    CREATE TABLE rcm.denial (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      claim_id uuid NOT NULL,
      x12_file_id uuid,
      payer_id text NOT NULL,
      line_number smallint,
      procedure_code text,
      group_code text,
      carc text,
      adjustments text[] NOT NULL,
      rarcs text[] NOT NULL,
      category text NOT NULL,
      denied_cents bigint NOT NULL,
      remitted_on date NOT NULL,
      appeal_deadline date NOT NULL,
      status text NOT NULL,
      appeal_id uuid,
      replacement_claim_id uuid,
      CONSTRAINT pk_denial PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_denial_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_denial_tenant_id_claim_id_claim FOREIGN KEY (tenant_id, claim_id)
        REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT fk_denial_tenant_id_x12_file_id_x12_file FOREIGN KEY (tenant_id, x12_file_id)
        REFERENCES rcm.x12_file (tenant_id, id),
      CONSTRAINT fk_denial_tenant_id_appeal_id_appeal FOREIGN KEY (tenant_id, appeal_id)
        REFERENCES rcm.appeal (tenant_id, id),
      CONSTRAINT fk_denial_tenant_id_replacement_claim_id_claim FOREIGN KEY (tenant_id, replacement_claim_id)
        REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT ck_denial_category CHECK (category IN ({_CATEGORIES})),
      CONSTRAINT ck_denial_status
        CHECK (status IN ('open', 'appealed', 'corrected', 'overturned', 'upheld', 'partial', 'closed')),
      CONSTRAINT ck_denial_group_code CHECK (group_code IN ('CO', 'OA', 'PI')),
      CONSTRAINT ck_denial_denied_cents CHECK (denied_cents >= 0),
      CONSTRAINT ck_denial_line_number CHECK (line_number BETWEEN 1 AND 999)
    )
    """,
    "CREATE INDEX ix_denial_deadline ON rcm.denial (tenant_id, appeal_deadline, id)",
    "CREATE INDEX ix_denial_claim ON rcm.denial (tenant_id, claim_id)",
    "CREATE INDEX ix_denial_remitted ON rcm.denial (tenant_id, remitted_on)",
]

# The app role: templates are edited, appeals move through their statuses, denials change status;
# attachments are written once.
GRANTS = {
    "appeal_template": "SELECT, INSERT, UPDATE",
    "appeal": "SELECT, INSERT, UPDATE",
    "appeal_attachment": "SELECT, INSERT",
    "denial": "SELECT, INSERT, UPDATE",
}


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT {privileges} ON rcm.{table} TO rcm_app")


def downgrade() -> None:
    op.execute("DROP TABLE rcm.denial")
    op.execute("DROP TABLE rcm.appeal_attachment")
    op.execute("DROP TABLE rcm.appeal")
    op.execute("DROP TABLE rcm.appeal_template")
    op.execute("ALTER TABLE rcm.work_item DROP CONSTRAINT ck_work_item_reason")
    op.execute(
        f"ALTER TABLE rcm.work_item ADD CONSTRAINT ck_work_item_reason CHECK (reason IN ({_OLD_REASONS}))"
        " NOT VALID"
    )
    op.execute("ALTER TABLE rcm.payer DROP COLUMN appeal_days")
