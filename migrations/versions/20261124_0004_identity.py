"""Identity: API clients, JWT signing keys, break-glass grants, used client-assertion ids.

Revision ID: 0004_identity
Revises: 0003_audit
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from rcm.kit.rls import global_table_ddl, tenant_table_ddl

revision = "0004_identity"
down_revision = "0003_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_client",
        sa.Column("tenant_id", pg.UUID(), sa.ForeignKey("rcm.tenant.id"), primary_key=True),
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("client_id", sa.Text(), nullable=False, unique=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("auth_method", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=True),
        sa.Column("jwks", pg.JSONB(), nullable=True),
        sa.Column("scopes", pg.ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("auth_method IN ('client_secret_basic', 'private_key_jwt')", name="auth_method"),
        sa.CheckConstraint("status IN ('active', 'revoked')", name="status"),
        sa.CheckConstraint(
            "(auth_method = 'client_secret_basic' AND secret_hash IS NOT NULL)"
            " OR (auth_method = 'private_key_jwt' AND jwks IS NOT NULL)",
            name="credential",
        ),
    )
    for statement in tenant_table_ddl("api_client", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)
    # The token endpoint must find a client before it knows the tenant. This permissive SELECT policy shows
    # exactly the one row whose client_id the caller presented (set transaction-locally by the endpoint);
    # the secret or signature check happens after. Policies are OR-ed, so tenant isolation still governs
    # every other read and all writes.
    op.execute(
        "CREATE POLICY client_lookup ON rcm.api_client FOR SELECT "
        "USING (client_id = current_setting('rcm.client_id', true))"
    )

    op.create_table(
        "signing_key",
        sa.Column("kid", sa.Text(), primary_key=True),
        sa.Column("alg", sa.Text(), nullable=False),
        sa.Column("kek_id", sa.Text(), nullable=False),
        sa.Column("wrapped_private_key", sa.LargeBinary(), nullable=False),
        sa.Column("public_jwk", pg.JSONB(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('active', 'published', 'retired')", name="state"),
    )
    # At most one key signs at a time; concurrent first starts race on this index and one wins.
    op.create_index(
        "uq_signing_key_one_active",
        "signing_key",
        ["state"],
        unique=True,
        postgresql_where=sa.text("state = 'active'"),
    )
    for statement in global_table_ddl("signing_key", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)

    op.create_table(
        "break_glass_grant",
        sa.Column("tenant_id", pg.UUID(), sa.ForeignKey("rcm.tenant.id"), primary_key=True),
        sa.Column("id", pg.UUID(), primary_key=True),
        sa.Column("user_id", pg.UUID(), sa.ForeignKey("rcm.app_user.id"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("length(btrim(reason)) > 0", name="reason"),
        # Emergency access is short by rule: at most four hours per grant.
        sa.CheckConstraint(
            "expires_at > created_at AND expires_at <= created_at + interval '4 hours'", name="expiry"
        ),
    )
    op.create_index("ix_break_glass_grant_user", "break_glass_grant", ["tenant_id", "user_id", "expires_at"])
    for statement in tenant_table_ddl("break_glass_grant", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)

    op.create_table(
        "used_client_assertion",
        sa.Column("client_id", sa.Text(), primary_key=True),
        sa.Column("jti", sa.Text(), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    for statement in global_table_ddl("used_client_assertion", privileges="SELECT, INSERT, DELETE"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("used_client_assertion")
    op.drop_table("break_glass_grant")
    op.drop_table("signing_key")
    op.drop_table("api_client")
