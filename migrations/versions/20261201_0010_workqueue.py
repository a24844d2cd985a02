"""Work queue: the work item leaves encounters (polymorphic subject, queue kind, lease) and gains its events.

Revision ID: 0010_workqueue
Revises: 0009_strict_input
Create Date: 2026-12-01

- ``work_item`` keeps its rows (and its RLS policy): ``queue`` becomes ``kind``; ``encounter_id`` becomes the
  polymorphic subject ``(subject_type, subject_id)`` (an encounter, a claim, a remittance, an eligibility
  check...), so it can no longer carry a foreign key to one table; the lease (``leased_by``,
  ``lease_expires_at``) and ``updated_at`` are added; vocabularies are CHECKed.
- ``work_item_event`` (insert-only, tenant-owned): one row per transition of an item. Each migrated item gets
  its ``created`` event, dated when the item was.

The DDL is frozen here (role names and the policy are literals), as every revision's is.
"""

from __future__ import annotations

from alembic import op

revision = "0010_workqueue"
down_revision = "0009_strict_input"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_LIVE = "status IN ('open', 'leased')"


def _all_tenants() -> None:
    # Row-level security is forced on the owner too: open every tenant's rows for this transaction only.
    op.execute(
        "SELECT set_config('rcm.tenant_id', coalesce((SELECT string_agg(id::text, ',') FROM rcm.tenant), ''),"
        " true)"
    )


def upgrade() -> None:
    _all_tenants()
    # --- work_item: subject, kind, lease -------------------------------------------------------------
    op.execute("DROP INDEX rcm.ix_work_item_queue")
    op.execute("ALTER TABLE rcm.work_item RENAME COLUMN queue TO kind")
    op.execute(
        """
        ALTER TABLE rcm.work_item
          ADD COLUMN subject_type text,
          ADD COLUMN subject_id uuid,
          ADD COLUMN leased_by text,
          ADD COLUMN lease_expires_at timestamptz,
          ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now()
        """
    )
    op.execute(
        "UPDATE rcm.work_item SET subject_type = 'encounter', subject_id = encounter_id, updated_at = created_at,"
        " status = CASE WHEN status IN ('open', 'leased', 'done', 'cancelled') THEN status ELSE 'open' END"
    )
    # Items of a lease that no longer exists (none were leased before this revision) must not look leased.
    op.execute("UPDATE rcm.work_item SET status = 'open' WHERE status = 'leased'")
    op.execute(
        """
        ALTER TABLE rcm.work_item
          ALTER COLUMN subject_type SET NOT NULL,
          ALTER COLUMN subject_id SET NOT NULL,
          DROP COLUMN encounter_id,
          ADD CONSTRAINT ck_work_item_kind CHECK (kind IN ('coding', 'billing')),
          ADD CONSTRAINT ck_work_item_subject_type
            CHECK (subject_type IN ('encounter', 'claim', 'remittance', 'eligibility_check')),
          ADD CONSTRAINT ck_work_item_status CHECK (status IN ('open', 'leased', 'done', 'cancelled')),
          ADD CONSTRAINT ck_work_item_lease CHECK (
            (status = 'leased') = (leased_by IS NOT NULL AND lease_expires_at IS NOT NULL)
          )
        """
    )
    # One live item per subject and queue: intake retried, or a subject re-queued, never doubles the work.
    op.execute(
        "CREATE UNIQUE INDEX uq_work_item_live_subject ON rcm.work_item "
        f"(tenant_id, kind, subject_type, subject_id) WHERE {_LIVE}"
    )
    # Leasing reads the live items of a queue by priority and due date.
    op.execute(
        f"CREATE INDEX ix_work_item_lease ON rcm.work_item (kind, priority, due_at, tenant_id) WHERE {_LIVE}"
    )
    op.execute("CREATE INDEX ix_work_item_subject ON rcm.work_item (tenant_id, subject_type, subject_id)")
    op.execute("GRANT SELECT, INSERT, UPDATE ON rcm.work_item TO rcm_app")

    # --- work_item_event: every transition, insert-only -----------------------------------------------
    op.execute(
        """
        CREATE TABLE rcm.work_item_event (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          work_item_id uuid NOT NULL,
          event text NOT NULL,
          status text NOT NULL,
          actor text,
          lease_expires_at timestamptz,
          CONSTRAINT pk_work_item_event PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_work_item_event_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
          CONSTRAINT fk_work_item_event_tenant_id_work_item FOREIGN KEY (tenant_id, work_item_id)
            REFERENCES rcm.work_item (tenant_id, id),
          CONSTRAINT ck_work_item_event_event
            CHECK (event IN ('created', 'leased', 'released', 'completed', 'cancelled')),
          CONSTRAINT ck_work_item_event_status CHECK (status IN ('open', 'leased', 'done', 'cancelled'))
        )
        """
    )
    op.execute("CREATE INDEX ix_work_item_event ON rcm.work_item_event (tenant_id, work_item_id, created_at)")
    op.execute("ALTER TABLE rcm.work_item_event ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rcm.work_item_event FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON rcm.work_item_event USING ({_POLICY}) WITH CHECK ({_POLICY})"
    )
    # History is written once and never changed.
    op.execute("GRANT SELECT, INSERT ON rcm.work_item_event TO rcm_app")
    op.execute(
        "INSERT INTO rcm.work_item_event (tenant_id, id, created_at, work_item_id, event, status)"
        " SELECT tenant_id, gen_random_uuid(), created_at, id, 'created', status FROM rcm.work_item"
    )
    op.execute("SELECT set_config('rcm.tenant_id', '', true)")


def downgrade() -> None:
    _all_tenants()
    op.execute("DROP TABLE rcm.work_item_event")
    op.execute("DROP INDEX rcm.ix_work_item_subject")
    op.execute("DROP INDEX rcm.ix_work_item_lease")
    op.execute("DROP INDEX rcm.uq_work_item_live_subject")
    # Only encounter items existed before this revision; others have no place in the old shape.
    op.execute("DELETE FROM rcm.work_item WHERE subject_type <> 'encounter'")
    op.execute(
        """
        ALTER TABLE rcm.work_item
          DROP CONSTRAINT ck_work_item_lease,
          DROP CONSTRAINT ck_work_item_status,
          DROP CONSTRAINT ck_work_item_subject_type,
          DROP CONSTRAINT ck_work_item_kind,
          ADD COLUMN encounter_id uuid
        """
    )
    op.execute("UPDATE rcm.work_item SET encounter_id = subject_id")
    op.execute(
        """
        ALTER TABLE rcm.work_item
          ALTER COLUMN encounter_id SET NOT NULL,
          DROP COLUMN subject_type,
          DROP COLUMN subject_id,
          DROP COLUMN leased_by,
          DROP COLUMN lease_expires_at,
          DROP COLUMN updated_at,
          ADD CONSTRAINT fk_work_item_tenant_id_encounter_id_encounter FOREIGN KEY (tenant_id, encounter_id)
            REFERENCES rcm.encounter (tenant_id, id)
        """
    )
    op.execute("ALTER TABLE rcm.work_item RENAME COLUMN kind TO queue")
    op.execute(
        "CREATE INDEX ix_work_item_queue ON rcm.work_item (tenant_id, queue, status, priority, due_at)"
    )
    op.execute("SELECT set_config('rcm.tenant_id', '', true)")
