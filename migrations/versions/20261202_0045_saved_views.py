"""Saved report views: a person's named settings of a dashboard report.

Revision ID: 0045_saved_views
Revises: 0040_report_rollups
Create Date: 2026-12-02

- ``saved_view``: one per practice, person (principal subject) and name; the report it reopens and its
  parameters (a JSON object of allow-listed settings: grain, grouping, period; no PHI).

A tenant-owned table with RLS enabled and forced with the tenant policy, and its grants, here. The DDL is
frozen as SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0045_saved_views"
down_revision = "0040_report_rollups"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

UPGRADE = [
    """
    CREATE TABLE rcm.saved_view (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      owner_subject text NOT NULL,
      name text NOT NULL,
      report text NOT NULL,
      parameters jsonb NOT NULL,
      CONSTRAINT pk_saved_view PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_saved_view_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_saved_view_tenant_id_owner_subject_name UNIQUE (tenant_id, owner_subject, name),
      CONSTRAINT ck_saved_view_report
        CHECK (report IN ('dashboard', 'cash_flow', 'ar_aging', 'kpis', 'claims')),
      CONSTRAINT ck_saved_view_name CHECK (length(name) BETWEEN 1 AND 80),
      CONSTRAINT ck_saved_view_parameters CHECK (jsonb_typeof(parameters) = 'object')
    )
    """,
    "CREATE INDEX ix_saved_view_owner ON rcm.saved_view (tenant_id, owner_subject, updated_at)",
    "ALTER TABLE rcm.saved_view ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.saved_view FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON rcm.saved_view USING ({_POLICY}) WITH CHECK ({_POLICY})",
    # People replace and delete their own views.
    "GRANT SELECT, INSERT, UPDATE, DELETE ON rcm.saved_view TO rcm_app",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE rcm.saved_view")
