"""Core: tenant context function, tenant registry, people and staff assignments.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

# The DDL below is frozen as plain SQL: it is what this revision created when it was written (it used to be
# built by rcm.kit.rls and by SQLAlchemy under the models' naming convention, both live code that may change).
_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

UPGRADE = [
    # The tenant context of the current transaction; NULL when none is set, and ``x = ANY(NULL)`` is never
    # true: no context means no rows and no inserts.
    """
    CREATE OR REPLACE FUNCTION rcm.current_tenant_ids() RETURNS uuid[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT string_to_array(nullif(current_setting('rcm.tenant_id', true), ''), ',')::uuid[] $$
    """,
    "GRANT EXECUTE ON FUNCTION rcm.current_tenant_ids() TO rcm_app",
    "GRANT SELECT ON rcm.alembic_version TO rcm_app",
    # The operator's registry of client practices. It belongs to no tenant (the API resolves a tenant's
    # slug before any tenant context exists) and holds no PHI.
    """
    CREATE TABLE rcm.tenant (
      id uuid NOT NULL,
      slug text NOT NULL,
      name text NOT NULL,
      status text NOT NULL DEFAULT 'active',
      manifest jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_tenant PRIMARY KEY (id),
      CONSTRAINT uq_tenant_slug UNIQUE (slug),
      CONSTRAINT ck_tenant_status CHECK (status IN ('active', 'suspended', 'offboarded')),
      CONSTRAINT ck_tenant_slug CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$')
    )
    """,
    "GRANT SELECT, INSERT, UPDATE ON rcm.tenant TO rcm_app",
    # People who log in through an OIDC issuer: billing-company staff, practice owners, auditors, admins.
    # Staff belong to the operator, not to a tenant; a practice owner's row names the one tenant it sees.
    """
    CREATE TABLE rcm.app_user (
      id uuid NOT NULL,
      issuer text NOT NULL,
      subject text NOT NULL,
      email text NOT NULL,
      display_name text NOT NULL,
      roles text[] NOT NULL,
      home_tenant_id uuid,
      active boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_app_user PRIMARY KEY (id),
      CONSTRAINT fk_app_user_home_tenant_id_tenant FOREIGN KEY (home_tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_app_user_issuer_subject UNIQUE (issuer, subject),
      CONSTRAINT uq_app_user_email UNIQUE (email)
    )
    """,
    "GRANT SELECT, INSERT, UPDATE ON rcm.app_user TO rcm_app",
    """
    CREATE TABLE rcm.staff_assignment (
      tenant_id uuid NOT NULL,
      user_id uuid NOT NULL,
      assigned_by uuid,
      created_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_staff_assignment PRIMARY KEY (tenant_id, user_id),
      CONSTRAINT fk_staff_assignment_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_staff_assignment_user_id_app_user FOREIGN KEY (user_id) REFERENCES rcm.app_user (id)
    )
    """,
    "ALTER TABLE rcm.staff_assignment ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.staff_assignment FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON rcm.staff_assignment USING ({_POLICY}) WITH CHECK ({_POLICY})",
    "GRANT SELECT, INSERT, DELETE ON rcm.staff_assignment TO rcm_app",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE rcm.staff_assignment")
    op.execute("DROP TABLE rcm.app_user")
    op.execute("DROP TABLE rcm.tenant")
    op.execute("DROP FUNCTION rcm.current_tenant_ids()")
