"""Least privilege for what a leaked ``rcm_app`` credential could still damage (review of issue 5).

- ``tenant``: only ``rcm_control`` writes practices. With the app role an attacker could swap two slugs (a
  staff member's encounter then lands in the wrong covered entity), lift a suspension or repoint a
  practice's billing NPI through its manifest.
- ``data_key``: the app role may create a tenant's first keys (first use) and retire a PHI key that
  re-encryption has emptied (``decrypt_only`` -> ``retired``), nothing else; a trigger holds it to exactly
  that. Before, it could overwrite every wrapped key with NULL, destroying a practice's PHI for good.
  Rotation, re-wrapping and shredding run as ``rcm_control`` (operator commands).
- ``audit_event.xid``: the inserting transaction id is what the chainer orders and seals by; the app role may
  no longer write it (it comes from ``pg_current_xact_id()``), so it cannot plant events that look skipped.
- ``audit_ensure_partition``: only the chainer (``rcm_audit``) and migrations create audit partitions; the
  app role could otherwise fill the catalogue with owner-owned partitions it cannot drop.

The DDL is frozen here as plain SQL: no import of a live helper that may change later.

Revision ID: 0013_least_privilege
Revises: 0010_workqueue
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0013_least_privilege"
down_revision = "0010_workqueue"
branch_labels = None
depends_on = None

# Every column of audit_event but xid, as of this revision.
_EVENT_COLUMNS = (
    "tenant_id, occurred_at, id, event_type, action, outcome, actor_kind, actor_subject, actor_roles, "
    "client_id, actor_hint, resource_type, resource_ids, patient_ids, source_ip, request_id, trace_id, detail"
)

UPGRADE = [
    # Practices
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON rcm.tenant FROM rcm_app",
    "GRANT INSERT, UPDATE ON rcm.tenant TO rcm_control",
    # Data keys
    "REVOKE UPDATE, DELETE, TRUNCATE ON rcm.data_key FROM rcm_app",
    "GRANT UPDATE (state, updated_at) ON rcm.data_key TO rcm_app",
    "GRANT UPDATE ON rcm.data_key TO rcm_control",
    """
    CREATE FUNCTION rcm.data_key_app_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
      -- Only the app role is held to this: it creates first keys and retires emptied ones, nothing else.
      IF current_user = 'rcm_app' THEN
        IF TG_OP = 'INSERT' AND NEW.state <> 'active' THEN
          RAISE EXCEPTION 'permission denied: rcm_app may only create active data keys' USING ERRCODE = '42501';
        END IF;
        IF TG_OP = 'UPDATE' AND NOT (OLD.state = 'decrypt_only' AND NEW.state = 'retired') THEN
          RAISE EXCEPTION 'permission denied: rcm_app may only retire a decrypt-only data key' USING ERRCODE = '42501';
        END IF;
      END IF;
      RETURN NEW;
    END
    $$
    """,
    "REVOKE ALL ON FUNCTION rcm.data_key_app_guard() FROM PUBLIC",
    "CREATE TRIGGER data_key_app_guard BEFORE INSERT OR UPDATE ON rcm.data_key"
    " FOR EACH ROW EXECUTE FUNCTION rcm.data_key_app_guard()",
    # Audit events: every column but the transaction id
    "REVOKE INSERT ON rcm.audit_event FROM rcm_app",
    f"GRANT INSERT ({_EVENT_COLUMNS}) ON rcm.audit_event TO rcm_app",
    # Audit partitions
    "REVOKE EXECUTE ON FUNCTION rcm.audit_ensure_partition(timestamptz) FROM rcm_app",
]

DOWNGRADE = [
    "GRANT EXECUTE ON FUNCTION rcm.audit_ensure_partition(timestamptz) TO rcm_app",
    f"REVOKE INSERT ({_EVENT_COLUMNS}) ON rcm.audit_event FROM rcm_app",
    "GRANT INSERT ON rcm.audit_event TO rcm_app",
    "DROP TRIGGER data_key_app_guard ON rcm.data_key",
    "DROP FUNCTION rcm.data_key_app_guard()",
    "REVOKE UPDATE ON rcm.data_key FROM rcm_control",
    "REVOKE UPDATE (state, updated_at) ON rcm.data_key FROM rcm_app",
    "GRANT UPDATE ON rcm.data_key TO rcm_app",
    "REVOKE INSERT, UPDATE ON rcm.tenant FROM rcm_control",
    "GRANT INSERT, UPDATE ON rcm.tenant TO rcm_app",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
