"""Crypto: per-tenant data keys (PHI encryption and blind indexes), wrapped by a key-encryption key.

Revision ID: 0002_crypto
Revises: 0001_core
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from rcm.kit.rls import tenant_table_ddl

revision = "0002_crypto"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per key version. Only wrapped key material is stored; the KEK never reaches the database.
    # States: 'active' encrypts new values; 'decrypt_only' was replaced by a rotation but rows still use it;
    # 'retired' no row uses it any more (kept so restored backups stay readable); 'destroyed' was
    # crypto-shredded (wrapped is NULL, forever).
    op.create_table(
        "data_key",
        sa.Column("tenant_id", pg.UUID(), sa.ForeignKey("rcm.tenant.id"), primary_key=True),
        sa.Column("purpose", sa.Text(), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("kek_id", sa.Text(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("purpose IN ('phi', 'blind_index')", name="purpose"),
        sa.CheckConstraint("state IN ('active', 'decrypt_only', 'retired', 'destroyed')", name="state"),
        sa.CheckConstraint("version >= 1", name="version"),
        # Key material exists exactly while the key is not destroyed.
        sa.CheckConstraint("(state = 'destroyed') = (wrapped IS NULL)", name="wrapped_iff_alive"),
    )
    # At most one key encrypts at a time per tenant and purpose; concurrent first requests cannot both win.
    op.create_index(
        "uq_data_key_one_active",
        "data_key",
        ["tenant_id", "purpose"],
        unique=True,
        postgresql_where=sa.text("state = 'active'"),
    )
    # No DELETE: a shred overwrites key material and keeps the row as evidence of when it happened.
    for statement in tenant_table_ddl("data_key", privileges="SELECT, INSERT, UPDATE"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("data_key")
