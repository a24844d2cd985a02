"""Audit: the HIPAA access log (append-only, partitioned by month, hash-chained per tenant), chain heads and
signed checkpoints.

Revision ID: 0003_audit
Revises: 0002_crypto
Create Date: 2026-11-24

How PostgreSQL treats partitions, and what this revision does about it:
- RLS: a query through the parent applies only the parent's policies; a query naming a partition applies the
  partition's own. Every partition therefore gets RLS enabled, forced and the same policy, and the app role is
  granted nothing on partitions at all (permission is checked on the table named in the query), so direct
  access to a partition is refused outright.
- Triggers: row-level triggers on the parent are cloned onto every partition (present and future);
  statement-level triggers are not, and ``TRUNCATE <partition>`` would bypass the parent's. The TRUNCATE trigger
  is therefore created on each partition by ``audit_ensure_partition``.
- A DEFAULT partition catches any timestamp without a monthly partition, so no event is ever refused for
  want of a partition.
"""

from __future__ import annotations

from alembic import op

revision = "0003_audit"
down_revision = "0002_crypto"
branch_labels = None
depends_on = None

# Frozen as plain SQL (see 0001_core): role names are literals, and tenant isolation is spelled out here.
_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"


def _isolate(table: str, privileges: str) -> list[str]:
    return [
        f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})",
        f"GRANT {privileges} ON rcm.{table} TO rcm_app",
    ]


REFUSE_CHANGE = """
CREATE FUNCTION rcm.audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- 45 CFR 164.312(b): the access log must not be altered. Fires for every role, the owner included.
  RAISE EXCEPTION 'rcm audit records are append-only (% on %)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$
"""

PROTECT_PARTITION = f"""
CREATE FUNCTION rcm.audit_protect_partition(part regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', part);
  EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', part);
  EXECUTE format('CREATE POLICY tenant_isolation ON %s USING ({_POLICY}) WITH CHECK ({_POLICY})', part);
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC, rcm_app', part);
  EXECUTE format('CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION rcm.audit_refuse_change()', part);
END
$$
"""

# Creates the monthly partition holding ``ts`` if missing and returns its name. SECURITY DEFINER (owned by
# rcm_owner) so the CLI, connected as the app role, can create partitions ahead without owning anything.
# If the DEFAULT partition already holds rows of that month, PostgreSQL refuses to carve the month out; the
# rows stay where they are (nothing lost) and the function returns NULL.
ENSURE_PARTITION = """
CREATE FUNCTION rcm.audit_ensure_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  lo timestamptz := date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
  hi timestamptz := (date_trunc('month', ts AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
  name text := 'audit_event_p' || to_char(ts AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
  IF to_regclass('rcm.' || name) IS NOT NULL THEN
    RETURN name;
  END IF;
  BEGIN
    EXECUTE format('CREATE TABLE rcm.%I PARTITION OF rcm.audit_event FOR VALUES FROM (%L) TO (%L)',
                   name, lo, hi);
  EXCEPTION WHEN check_violation THEN
    RAISE NOTICE 'audit partition % not created: the default partition holds rows of that month', name;
    RETURN NULL;
  END;
  PERFORM rcm.audit_protect_partition(('rcm.' || quote_ident(name))::regclass);
  RETURN name;
END
$$
"""


def upgrade() -> None:
    op.execute(REFUSE_CHANGE)

    op.execute(
        """
        CREATE TABLE rcm.audit_event (
          tenant_id uuid NOT NULL,
          seq bigint NOT NULL,
          occurred_at timestamptz NOT NULL,
          id uuid NOT NULL,
          event_type text NOT NULL,
          action text NOT NULL,
          outcome text NOT NULL,
          actor_kind text,
          actor_subject text,
          actor_roles text[] NOT NULL DEFAULT '{}',
          client_id text,
          actor_hint text,
          resource_type text,
          resource_ids uuid[] NOT NULL DEFAULT '{}',
          patient_ids uuid[] NOT NULL DEFAULT '{}',
          source_ip text,
          request_id text NOT NULL,
          trace_id text NOT NULL,
          detail jsonb NOT NULL DEFAULT '{}',
          prev_hash bytea NOT NULL,
          hash bytea NOT NULL,
          CONSTRAINT pk_audit_event PRIMARY KEY (tenant_id, seq, occurred_at),
          CONSTRAINT ck_audit_event_action CHECK (action IN ('C', 'R', 'U', 'D', 'E')),
          CONSTRAINT ck_audit_event_outcome CHECK (outcome IN ('0', '4', '8', '12')),
          CONSTRAINT ck_audit_event_seq CHECK (seq > 0),
          CONSTRAINT ck_audit_event_hash CHECK (octet_length(hash) = 32 AND octet_length(prev_hash) = 32)
        ) PARTITION BY RANGE (occurred_at)
        """
    )
    # Auditors' searches: newest first (keyset), by patient, by resource, by actor.
    op.execute("CREATE INDEX ix_audit_event_recent ON rcm.audit_event (occurred_at, tenant_id, seq)")
    op.execute("CREATE INDEX ix_audit_event_patient_ids ON rcm.audit_event USING gin (patient_ids)")
    op.execute("CREATE INDEX ix_audit_event_resource_ids ON rcm.audit_event USING gin (resource_ids)")
    op.execute("CREATE INDEX ix_audit_event_actor ON rcm.audit_event (tenant_id, actor_subject, occurred_at)")
    # BEFORE row triggers on a partitioned table are cloned onto each partition (PostgreSQL >= 13).
    op.execute(
        "CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON rcm.audit_event "
        "FOR EACH ROW EXECUTE FUNCTION rcm.audit_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON rcm.audit_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION rcm.audit_refuse_change()"
    )
    # The app role may only read and append: no UPDATE, DELETE or TRUNCATE privilege exists to misuse.
    for statement in _isolate("audit_event", "SELECT, INSERT"):
        op.execute(statement)

    op.execute(PROTECT_PARTITION)
    op.execute("CREATE TABLE rcm.audit_event_default PARTITION OF rcm.audit_event DEFAULT")
    op.execute("SELECT rcm.audit_protect_partition('rcm.audit_event_default'::regclass)")
    op.execute(ENSURE_PARTITION)
    op.execute("ALTER FUNCTION rcm.audit_ensure_partition(timestamptz) OWNER TO rcm_owner")
    op.execute("REVOKE ALL ON FUNCTION rcm.audit_ensure_partition(timestamptz) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION rcm.audit_ensure_partition(timestamptz) TO rcm_app")
    op.execute("REVOKE ALL ON FUNCTION rcm.audit_protect_partition(regclass) FROM PUBLIC")
    # The previous month (late writers), this month and the next three.
    op.execute(
        "SELECT rcm.audit_ensure_partition(now() + make_interval(months => m)) FROM generate_series(-1, 3) m"
    )

    # One row per tenant: the end of its chain. Locked FOR UPDATE only while the audit rows are appended,
    # just before commit, which serialises appends per tenant and keeps seq gapless.
    op.execute(
        """
        CREATE TABLE rcm.audit_chain_head (
          tenant_id uuid NOT NULL,
          seq bigint NOT NULL,
          hash bytea NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_audit_chain_head PRIMARY KEY (tenant_id)
        )
        """
    )
    for statement in _isolate("audit_chain_head", "SELECT, INSERT, UPDATE"):
        op.execute(statement)

    # Signed anchors of the chain. The Ed25519 signing key lives outside the database, so a database
    # superuser who rewrites history cannot produce a matching checkpoint.
    op.execute(
        """
        CREATE TABLE rcm.audit_checkpoint (
          tenant_id uuid NOT NULL,
          seq bigint NOT NULL,
          hash bytea NOT NULL,
          created_at timestamptz NOT NULL,
          key_id text NOT NULL,
          signature bytea NOT NULL,
          CONSTRAINT pk_audit_checkpoint PRIMARY KEY (tenant_id, seq, key_id)
        )
        """
    )
    op.execute(
        "CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON rcm.audit_checkpoint "
        "FOR EACH ROW EXECUTE FUNCTION rcm.audit_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON rcm.audit_checkpoint "
        "FOR EACH STATEMENT EXECUTE FUNCTION rcm.audit_refuse_change()"
    )
    for statement in _isolate("audit_checkpoint", "SELECT, INSERT"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE rcm.audit_checkpoint")
    op.execute("DROP TABLE rcm.audit_chain_head")
    op.execute("DROP TABLE rcm.audit_event")
    op.execute("DROP FUNCTION rcm.audit_ensure_partition(timestamptz)")
    op.execute("DROP FUNCTION rcm.audit_protect_partition(regclass)")
    op.execute("DROP FUNCTION rcm.audit_refuse_change()")
