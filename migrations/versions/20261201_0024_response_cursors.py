"""Where each practice's fetch of payer responses stopped: one cursor per connector endpoint.

Revision ID: 0024_response_cursors
Revises: 0023_submission_outbox

``rcm.response_cursor`` is tenant-owned (RLS forced): the opaque cursor a connector's ``fetch_responses``
gave last (a sequence number, a listing marker), per practice, connector and endpoint, so the next fetch asks
only for what is newer. It holds no PHI. The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0024_response_cursors"
down_revision = "0023_submission_outbox"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

STATEMENTS = [
    """
    CREATE TABLE rcm.response_cursor (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      connector text NOT NULL,
      endpoint text NOT NULL,
      cursor text,
      fetched_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_response_cursor PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_response_cursor_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_response_cursor_tenant_id_connector_endpoint UNIQUE (tenant_id, connector, endpoint)
    )
    """,
    "ALTER TABLE rcm.response_cursor ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.response_cursor FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON rcm.response_cursor USING ({_POLICY}) WITH CHECK ({_POLICY})",
    # A cursor only moves forward (or starts over); it is never deleted by the app.
    "GRANT SELECT, INSERT, UPDATE ON rcm.response_cursor TO rcm_app",
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE rcm.response_cursor")
