"""Identity: API clients, JWT signing keys, break-glass grants, used client-assertion ids.

Revision ID: 0004_identity
Revises: 0003_audit
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0004_identity"
down_revision = "0003_audit"
branch_labels = None
depends_on = None

# Frozen as plain SQL (see 0001_core): no live helper or naming convention decides what this revision does.
_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

UPGRADE = [
    """
    CREATE TABLE rcm.api_client (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      client_id text NOT NULL,
      name text NOT NULL,
      auth_method text NOT NULL,
      secret_hash bytea,
      jwks jsonb,
      scopes text[] NOT NULL,
      status text NOT NULL DEFAULT 'active',
      created_at timestamptz NOT NULL DEFAULT now(),
      rotated_at timestamptz,
      revoked_at timestamptz,
      CONSTRAINT pk_api_client PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_api_client_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_api_client_client_id UNIQUE (client_id),
      CONSTRAINT ck_api_client_auth_method CHECK (auth_method IN ('client_secret_basic', 'private_key_jwt')),
      CONSTRAINT ck_api_client_status CHECK (status IN ('active', 'revoked')),
      CONSTRAINT ck_api_client_credential CHECK (
        (auth_method = 'client_secret_basic' AND secret_hash IS NOT NULL)
        OR (auth_method = 'private_key_jwt' AND jwks IS NOT NULL))
    )
    """,
    "ALTER TABLE rcm.api_client ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.api_client FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON rcm.api_client USING ({_POLICY}) WITH CHECK ({_POLICY})",
    "GRANT SELECT, INSERT, UPDATE ON rcm.api_client TO rcm_app",
    # The token endpoint must find a client before it knows the tenant. This permissive SELECT policy shows
    # exactly the one row whose client_id the caller presented (set transaction-locally by the endpoint);
    # the secret or signature check happens after. Policies are OR-ed, so tenant isolation still governs
    # every other read and all writes.
    "CREATE POLICY client_lookup ON rcm.api_client FOR SELECT "
    "USING (client_id = current_setting('rcm.client_id', true))",
    """
    CREATE TABLE rcm.signing_key (
      kid text NOT NULL,
      alg text NOT NULL,
      kek_id text NOT NULL,
      wrapped_private_key bytea NOT NULL,
      public_jwk jsonb NOT NULL,
      state text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      published_until timestamptz,
      retired_at timestamptz,
      CONSTRAINT pk_signing_key PRIMARY KEY (kid),
      CONSTRAINT ck_signing_key_state CHECK (state IN ('active', 'published', 'retired'))
    )
    """,
    # At most one key signs at a time; concurrent first starts race on this index and one wins.
    "CREATE UNIQUE INDEX uq_signing_key_one_active ON rcm.signing_key (state) WHERE state = 'active'",
    "GRANT SELECT, INSERT, UPDATE ON rcm.signing_key TO rcm_app",
    """
    CREATE TABLE rcm.break_glass_grant (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      user_id uuid NOT NULL,
      reason text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      revoked_at timestamptz,
      CONSTRAINT pk_break_glass_grant PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_break_glass_grant_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_break_glass_grant_user_id_app_user FOREIGN KEY (user_id) REFERENCES rcm.app_user (id),
      CONSTRAINT ck_break_glass_grant_reason CHECK (length(btrim(reason)) > 0),
      -- Emergency access is short by rule: at most four hours per grant.
      CONSTRAINT ck_break_glass_grant_expiry
        CHECK (expires_at > created_at AND expires_at <= created_at + interval '4 hours')
    )
    """,
    "CREATE INDEX ix_break_glass_grant_user ON rcm.break_glass_grant (tenant_id, user_id, expires_at)",
    "ALTER TABLE rcm.break_glass_grant ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE rcm.break_glass_grant FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON rcm.break_glass_grant USING ({_POLICY}) WITH CHECK ({_POLICY})",
    "GRANT SELECT, INSERT, UPDATE ON rcm.break_glass_grant TO rcm_app",
    """
    CREATE TABLE rcm.used_client_assertion (
      client_id text NOT NULL,
      jti text NOT NULL,
      expires_at timestamptz NOT NULL,
      CONSTRAINT pk_used_client_assertion PRIMARY KEY (client_id, jti)
    )
    """,
    "GRANT SELECT, INSERT, DELETE ON rcm.used_client_assertion TO rcm_app",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE rcm.used_client_assertion")
    op.execute("DROP TABLE rcm.break_glass_grant")
    op.execute("DROP TABLE rcm.signing_key")
    op.execute("DROP TABLE rcm.api_client")
