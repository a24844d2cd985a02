"""Crypto: per-tenant data keys (PHI encryption and blind indexes), wrapped by a key-encryption key.

Revision ID: 0002_crypto
Revises: 0001_core
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0002_crypto"
down_revision = "0001_core"
branch_labels = None
depends_on = None

# Frozen as plain SQL (see 0001_core): no live helper or naming convention decides what this revision does.
_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

UPGRADE = [
    # One row per key version. Only wrapped key material is stored; the KEK never reaches the database.
    # States: 'active' encrypts new values; 'decrypt_only' was replaced by a rotation but rows still use it;
    # 'retired' no row uses it any more (kept so restored backups stay readable); 'destroyed' was
    # crypto-shredded (wrapped is NULL, forever).
    """
    CREATE TABLE rcm.data_key (
      tenant_id uuid NOT NULL,
      purpose text NOT NULL,
      version integer NOT NULL,
      state text NOT NULL,
      kek_id text NOT NULL,
      wrapped bytea,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_data_key PRIMARY KEY (tenant_id, purpose, version),
      CONSTRAINT fk_data_key_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT ck_data_key_purpose CHECK (purpose IN ('phi', 'blind_index')),
      CONSTRAINT ck_data_key_state CHECK (state IN ('active', 'decrypt_only', 'retired', 'destroyed')),
      CONSTRAINT ck_data_key_version CHECK (version >= 1),
      -- Key material exists exactly while the key is not destroyed.
      CONSTRAINT ck_data_key_wrapped_iff_alive CHECK ((state = 'destroyed') = (wrapped IS NULL))
    )
    """,
    # At most one key encrypts at a time per tenant and purpose; concurrent first requests cannot both win.
    "CREATE UNIQUE INDEX uq_data_key_one_active ON rcm.data_key (tenant_id, purpose) WHERE state = 'active'",
    "ALTER TABLE rcm.data_key ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.data_key FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON rcm.data_key USING ({_POLICY}) WITH CHECK ({_POLICY})",
    # No DELETE: a shred overwrites key material and keeps the row as evidence of when it happened.
    "GRANT SELECT, INSERT, UPDATE ON rcm.data_key TO rcm_app",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE rcm.data_key")
