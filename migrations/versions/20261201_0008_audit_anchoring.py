"""Audit anchoring: requests only append events; a chainer (role rcm_audit) seals them into the hash chains.

Revision ID: 0008_audit_anchoring
Revises: 0007_break_glass
Create Date: 2026-12-01

Before: every audit insert locked its tenant's ``audit_chain_head`` row and computed the chain inside the
request, and ``rcm_app`` could move the head and write checkpoints. Now:
- ``audit_event`` loses ``seq``/``prev_hash``/``hash`` and gains ``xid`` (the inserting transaction,
  ``pg_current_xact_id()``). A request inserts its events in its own transaction, without any lock.
- ``audit_seal`` (insert-only) holds each event's chain position and hashes. Only ``rcm_audit`` writes it,
  and the chain head and checkpoints; ``rcm_app`` keeps SELECT on them (search, export, verify).
- ``audit_chainer_state`` holds the watermark: every event whose xid is below it has been sealed. The chainer
  seals events with ``watermark <= xid < pg_snapshot_xmin(pg_current_snapshot())``: every transaction that
  could still add such an event has ended, so none is ever skipped or sealed twice.
Existing chains keep their positions and hashes: they are copied into ``audit_seal`` (the hash always covered
seq, so it still verifies).

The DDL is frozen here (role names are literals), as every revision's is.
"""

from __future__ import annotations

from alembic import op

revision = "0008_audit_anchoring"
down_revision = "0007_break_glass"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"


def upgrade() -> None:
    # --- the seal table: chain positions and hashes, insert-only --------------------------------------
    op.execute(
        """
        CREATE TABLE rcm.audit_seal (
          tenant_id uuid NOT NULL,
          seq bigint NOT NULL,
          event_id uuid NOT NULL,
          occurred_at timestamptz NOT NULL,
          prev_hash bytea NOT NULL,
          hash bytea NOT NULL,
          sealed_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_audit_seal PRIMARY KEY (tenant_id, seq),
          CONSTRAINT uq_audit_seal_event UNIQUE (tenant_id, event_id),
          CONSTRAINT ck_audit_seal_seq CHECK (seq > 0),
          CONSTRAINT ck_audit_seal_hash CHECK (octet_length(hash) = 32 AND octet_length(prev_hash) = 32)
        )
        """
    )
    op.execute(
        "CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON rcm.audit_seal "
        "FOR EACH ROW EXECUTE FUNCTION rcm.audit_refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON rcm.audit_seal "
        "FOR EACH STATEMENT EXECUTE FUNCTION rcm.audit_refuse_change()"
    )
    op.execute("ALTER TABLE rcm.audit_seal ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rcm.audit_seal FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON rcm.audit_seal USING ({_POLICY}) WITH CHECK ({_POLICY})")
    op.execute("GRANT SELECT ON rcm.audit_seal TO rcm_app")
    op.execute("GRANT SELECT, INSERT ON rcm.audit_seal TO rcm_audit")

    # --- existing chains move into the seal table (beneath RLS for this one statement) ------------------
    op.execute("ALTER TABLE rcm.audit_event NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rcm.audit_seal NO FORCE ROW LEVEL SECURITY")
    op.execute(
        "INSERT INTO rcm.audit_seal (tenant_id, seq, event_id, occurred_at, prev_hash, hash, sealed_at) "
        "SELECT tenant_id, seq, id, occurred_at, prev_hash, hash, occurred_at FROM rcm.audit_event"
    )
    op.execute("ALTER TABLE rcm.audit_event FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rcm.audit_seal FORCE ROW LEVEL SECURITY")

    # --- events: no chain columns, the inserting transaction's id instead -------------------------------
    # A constant default first (no table rewrite; the copied events are sealed already), then the real one.
    op.execute("ALTER TABLE rcm.audit_event ADD COLUMN xid xid8 NOT NULL DEFAULT '1'")
    op.execute("ALTER TABLE rcm.audit_event ALTER COLUMN xid SET DEFAULT pg_current_xact_id()")
    op.execute("ALTER TABLE rcm.audit_event DROP CONSTRAINT pk_audit_event")
    op.execute("DROP INDEX rcm.ix_audit_event_recent")
    op.execute("ALTER TABLE rcm.audit_event DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash")
    op.execute(
        "ALTER TABLE rcm.audit_event ADD CONSTRAINT pk_audit_event PRIMARY KEY (tenant_id, id, occurred_at)"
    )
    # Auditors' searches, newest first (keyset on occurred_at, tenant, id); the chainer's scan by xid.
    op.execute("CREATE INDEX ix_audit_event_recent ON rcm.audit_event (occurred_at, tenant_id, id)")
    op.execute("CREATE INDEX ix_audit_event_xid ON rcm.audit_event (xid)")
    op.execute("GRANT SELECT ON rcm.audit_event TO rcm_audit")

    # --- the chainer's watermark (one row, no tenant) ----------------------------------------------------
    op.execute(
        """
        CREATE TABLE rcm.audit_chainer_state (
          id smallint NOT NULL DEFAULT 1,
          sealed_below xid8 NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_audit_chainer_state PRIMARY KEY (id),
          CONSTRAINT ck_audit_chainer_state_one CHECK (id = 1)
        )
        """
    )
    op.execute(
        "INSERT INTO rcm.audit_chainer_state (id, sealed_below) "
        "VALUES (1, pg_snapshot_xmin(pg_current_snapshot()))"
    )
    op.execute("GRANT SELECT ON rcm.audit_chainer_state TO rcm_app")
    op.execute("GRANT SELECT, UPDATE ON rcm.audit_chainer_state TO rcm_audit")

    # --- chain head and checkpoints: written by the chainer alone ---------------------------------------
    op.execute("REVOKE INSERT, UPDATE, DELETE ON rcm.audit_chain_head FROM rcm_app")
    op.execute("GRANT SELECT, INSERT, UPDATE ON rcm.audit_chain_head TO rcm_audit")
    op.execute("REVOKE INSERT, UPDATE, DELETE ON rcm.audit_checkpoint FROM rcm_app")
    op.execute("GRANT SELECT, INSERT ON rcm.audit_checkpoint TO rcm_audit")

    # The chainer's cross-tenant path names every registered tenant, and it keeps partitions ahead.
    op.execute("GRANT SELECT ON rcm.tenant TO rcm_audit")
    op.execute("GRANT EXECUTE ON FUNCTION rcm.audit_ensure_partition(timestamptz) TO rcm_audit")


def downgrade() -> None:
    op.execute("REVOKE EXECUTE ON FUNCTION rcm.audit_ensure_partition(timestamptz) FROM rcm_audit")
    op.execute("REVOKE ALL ON rcm.tenant FROM rcm_audit")
    op.execute("REVOKE ALL ON rcm.audit_checkpoint FROM rcm_audit")
    op.execute("GRANT INSERT ON rcm.audit_checkpoint TO rcm_app")
    op.execute("REVOKE ALL ON rcm.audit_chain_head FROM rcm_audit")
    op.execute("GRANT INSERT, UPDATE ON rcm.audit_chain_head TO rcm_app")
    op.execute("DROP TABLE rcm.audit_chainer_state")
    op.execute("REVOKE ALL ON rcm.audit_event FROM rcm_audit")
    # Unsealed events cannot return to the old layout (it has no row without a position): refuse.
    op.execute(
        """
        DO $$
        BEGIN
          ALTER TABLE rcm.audit_event NO FORCE ROW LEVEL SECURITY;
          ALTER TABLE rcm.audit_seal NO FORCE ROW LEVEL SECURITY;
          IF EXISTS (SELECT 1 FROM rcm.audit_event e WHERE NOT EXISTS (
                       SELECT 1 FROM rcm.audit_seal s WHERE s.tenant_id = e.tenant_id AND s.event_id = e.id)) THEN
            RAISE EXCEPTION 'unsealed audit events exist: run the chainer before downgrading';
          END IF;
        END
        $$
        """
    )
    op.execute("DROP INDEX rcm.ix_audit_event_xid")
    op.execute("DROP INDEX rcm.ix_audit_event_recent")
    op.execute("ALTER TABLE rcm.audit_event DROP CONSTRAINT pk_audit_event")
    op.execute(
        "ALTER TABLE rcm.audit_event ADD COLUMN seq bigint, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea"
    )
    # Row triggers refuse UPDATE: the positions come back through a rewrite of the table's rows.
    op.execute("ALTER TABLE rcm.audit_event DISABLE TRIGGER audit_no_update_delete")
    op.execute(
        "UPDATE rcm.audit_event e SET seq = s.seq, prev_hash = s.prev_hash, hash = s.hash "
        "FROM rcm.audit_seal s WHERE s.tenant_id = e.tenant_id AND s.event_id = e.id"
    )
    op.execute("ALTER TABLE rcm.audit_event ENABLE TRIGGER audit_no_update_delete")
    op.execute("ALTER TABLE rcm.audit_event ALTER COLUMN seq SET NOT NULL")
    op.execute("ALTER TABLE rcm.audit_event ALTER COLUMN prev_hash SET NOT NULL")
    op.execute("ALTER TABLE rcm.audit_event ALTER COLUMN hash SET NOT NULL")
    op.execute("ALTER TABLE rcm.audit_event DROP COLUMN xid")
    op.execute(
        "ALTER TABLE rcm.audit_event ADD CONSTRAINT pk_audit_event PRIMARY KEY (tenant_id, seq, occurred_at)"
    )
    op.execute("CREATE INDEX ix_audit_event_recent ON rcm.audit_event (occurred_at, tenant_id, seq)")
    op.execute("ALTER TABLE rcm.audit_event FORCE ROW LEVEL SECURITY")
    op.execute("DROP TABLE rcm.audit_seal")
