"""Core: tenant context function, tenant registry, people and staff assignments.

Revision ID: 0001_core
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from rcm.config import APP_ROLE
from rcm.kit.rls import CURRENT_TENANTS_FUNCTION, global_table_ddl, tenant_table_ddl

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(CURRENT_TENANTS_FUNCTION)
    op.execute(f"GRANT EXECUTE ON FUNCTION rcm.current_tenant_ids() TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON rcm.alembic_version TO {APP_ROLE}")

    # The operator's registry of client practices. It belongs to no tenant (the API resolves a tenant's
    # slug before any tenant context exists) and holds no PHI.
    op.create_table(
        "tenant",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("slug", sa.Text(), nullable=False, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="active"),
        sa.Column("manifest", pg.JSONB(), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('active', 'suspended', 'offboarded')", name="status"),
        sa.CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'", name="slug"),
    )
    for statement in global_table_ddl("tenant", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)

    # People who log in through an OIDC issuer: billing-company staff, practice owners, auditors, admins.
    # Staff belong to the operator, not to a tenant; a practice owner's row names the one tenant it sees.
    op.create_table(
        "app_user",
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("roles", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("home_tenant_id", pg.UUID(), sa.ForeignKey("rcm.tenant.id"), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("issuer", "subject"),
        sa.UniqueConstraint("email"),
    )
    for statement in global_table_ddl("app_user", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)

    op.create_table(
        "staff_assignment",
        sa.Column("tenant_id", pg.UUID(), sa.ForeignKey("rcm.tenant.id"), primary_key=True),
        sa.Column("user_id", pg.UUID(), sa.ForeignKey("rcm.app_user.id"), primary_key=True),
        sa.Column("assigned_by", pg.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    for statement in tenant_table_ddl("staff_assignment", privileges="SELECT, INSERT, DELETE"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("staff_assignment")
    op.drop_table("app_user")
    op.drop_table("tenant")
    op.execute("DROP FUNCTION rcm.current_tenant_ids()")
