"""Coding queue: fair leasing, queries to the practice, coding versions, fee schedules and QA.

Revision ID: 0016_coding_queue
Revises: 0014_code_sets
Create Date: 2026-12-01

- ``work_item`` gains ``leased_at`` (when a lease last began: the practice served least recently goes first,
  so one practice's backlog cannot starve another's) and the status ``waiting`` (a query is with the
  practice); its events gain ``drafted``, ``queried``, ``answered``, ``reassigned`` and ``reprioritised``.
  The lease index becomes per practice (the lease walks practices in turn, each by priority and due date).
- ``coding_version`` (+ ``coding_diagnosis``, ``coding_line``): every draft, completion and QA review of an
  item, append-only (INSERT and SELECT only).
- ``coding_query``: a coder's question to the practice and its answer (both PHI: ciphertext).
- ``fee_schedule``: a practice's charge per CPT/HCPCS code (and modifier), in cents.
- ``qa_sample``: completed work sampled for a blind review, and the agreement it scored.
- ``staff_assignment.qa_reviewer``: the person reviews QA samples of that practice (written by the control
  role only, as every assignment is).

The DDL is frozen here (role names and the policy are literals), as every revision's is.
"""

from __future__ import annotations

from alembic import op

revision = "0016_coding_queue"
down_revision = "0015_blobs_bulk"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_LEASABLE = "status IN ('open', 'leased')"
_LIVE = "status IN ('open', 'leased', 'waiting')"
_STATUSES = "'open', 'leased', 'waiting', 'done', 'cancelled'"
_EVENTS = (
    "'created', 'leased', 'released', 'completed', 'cancelled', "
    "'drafted', 'queried', 'answered', 'reassigned', 'reprioritised'"
)


def _rls(table: str) -> None:
    op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")


def upgrade() -> None:
    # --- work_item: fair leasing, waiting on the practice ---------------------------------------------
    op.execute("ALTER TABLE rcm.work_item ADD COLUMN leased_at timestamptz")
    op.execute(
        f"""
        ALTER TABLE rcm.work_item
          DROP CONSTRAINT ck_work_item_status,
          ADD CONSTRAINT ck_work_item_status CHECK (status IN ({_STATUSES}))
        """
    )
    op.execute("DROP INDEX rcm.uq_work_item_live_subject")
    op.execute(
        "CREATE UNIQUE INDEX uq_work_item_live_subject ON rcm.work_item "
        f"(tenant_id, kind, subject_type, subject_id) WHERE {_LIVE}"
    )
    op.execute("DROP INDEX rcm.ix_work_item_lease")
    # The lease reads each practice's leasable items by priority, due date and id.
    op.execute(
        "CREATE INDEX ix_work_item_lease ON rcm.work_item (tenant_id, kind, priority, due_at, id) "
        f"WHERE {_LEASABLE}"
    )
    # ... and when each practice was last served (one backward index probe per practice).
    op.execute("CREATE INDEX ix_work_item_served ON rcm.work_item (tenant_id, kind, leased_at)")
    op.execute(
        f"""
        ALTER TABLE rcm.work_item_event
          DROP CONSTRAINT ck_work_item_event_event,
          ADD CONSTRAINT ck_work_item_event_event CHECK (event IN ({_EVENTS})),
          DROP CONSTRAINT ck_work_item_event_status,
          ADD CONSTRAINT ck_work_item_event_status CHECK (status IN ({_STATUSES}))
        """
    )

    # --- coding versions: drafts, completions, reviews (append-only) ----------------------------------
    op.execute(
        """
        CREATE TABLE rcm.coding_version (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          work_item_id uuid NOT NULL,
          encounter_id uuid NOT NULL,
          number integer NOT NULL,
          state text NOT NULL,
          coder text NOT NULL,
          CONSTRAINT pk_coding_version PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_coding_version_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
          CONSTRAINT fk_coding_version_tenant_id_work_item FOREIGN KEY (tenant_id, work_item_id)
            REFERENCES rcm.work_item (tenant_id, id),
          CONSTRAINT fk_coding_version_tenant_id_encounter FOREIGN KEY (tenant_id, encounter_id)
            REFERENCES rcm.encounter (tenant_id, id),
          CONSTRAINT uq_coding_version_tenant_id_work_item_id_number UNIQUE (tenant_id, work_item_id, number),
          CONSTRAINT ck_coding_version_state CHECK (state IN ('draft', 'completed', 'review'))
        )
        """
    )
    op.execute(
        """
        CREATE TABLE rcm.coding_diagnosis (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          coding_version_id uuid NOT NULL,
          sequence smallint NOT NULL,
          code text NOT NULL,
          CONSTRAINT pk_coding_diagnosis PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_coding_diagnosis_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
          CONSTRAINT fk_coding_diagnosis_tenant_id_coding_version FOREIGN KEY (tenant_id, coding_version_id)
            REFERENCES rcm.coding_version (tenant_id, id),
          CONSTRAINT uq_coding_diagnosis_tenant_id_coding_version_id_sequence
            UNIQUE (tenant_id, coding_version_id, sequence)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE rcm.coding_line (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          coding_version_id uuid NOT NULL,
          line_number smallint NOT NULL,
          procedure_code text NOT NULL,
          modifiers text[] NOT NULL,
          units integer NOT NULL,
          charge_cents bigint NOT NULL,
          diagnosis_pointers smallint[] NOT NULL,
          CONSTRAINT pk_coding_line PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_coding_line_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
          CONSTRAINT fk_coding_line_tenant_id_coding_version FOREIGN KEY (tenant_id, coding_version_id)
            REFERENCES rcm.coding_version (tenant_id, id),
          CONSTRAINT uq_coding_line_tenant_id_coding_version_id_line_number
            UNIQUE (tenant_id, coding_version_id, line_number)
        )
        """
    )
    for table in ("coding_version", "coding_diagnosis", "coding_line"):
        _rls(table)
        # A version is written once and never changed: the history of a coding is its versions.
        op.execute(f"GRANT SELECT, INSERT ON rcm.{table} TO rcm_app")

    # --- queries to the practice ----------------------------------------------------------------------
    op.execute(
        """
        CREATE TABLE rcm.coding_query (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          work_item_id uuid NOT NULL,
          encounter_id uuid NOT NULL,
          asked_by text NOT NULL,
          question bytea NOT NULL,
          status text NOT NULL,
          answer bytea,
          answered_by text,
          answered_at timestamptz,
          CONSTRAINT pk_coding_query PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_coding_query_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
          CONSTRAINT fk_coding_query_tenant_id_work_item FOREIGN KEY (tenant_id, work_item_id)
            REFERENCES rcm.work_item (tenant_id, id),
          CONSTRAINT fk_coding_query_tenant_id_encounter FOREIGN KEY (tenant_id, encounter_id)
            REFERENCES rcm.encounter (tenant_id, id),
          CONSTRAINT ck_coding_query_status CHECK (status IN ('open', 'answered'))
        )
        """
    )
    op.execute("CREATE INDEX ix_coding_query_open ON rcm.coding_query (tenant_id, status, created_at)")
    _rls("coding_query")
    op.execute("GRANT SELECT, INSERT, UPDATE ON rcm.coding_query TO rcm_app")

    # --- fee schedules ----------------------------------------------------------------------------------
    op.execute(
        """
        CREATE TABLE rcm.fee_schedule (
          tenant_id uuid NOT NULL,
          code text NOT NULL,
          modifier text NOT NULL DEFAULT '',
          charge_cents bigint NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now(),
          CONSTRAINT pk_fee_schedule PRIMARY KEY (tenant_id, code, modifier),
          CONSTRAINT fk_fee_schedule_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
          CONSTRAINT ck_fee_schedule_charge CHECK (charge_cents >= 0)
        )
        """
    )
    _rls("fee_schedule")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON rcm.fee_schedule TO rcm_app")

    # --- QA samples -------------------------------------------------------------------------------------
    op.execute(
        """
        CREATE TABLE rcm.qa_sample (
          tenant_id uuid NOT NULL,
          id uuid NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          work_item_id uuid NOT NULL,
          encounter_id uuid NOT NULL,
          original_version_id uuid NOT NULL,
          coder text NOT NULL,
          sampled_by text NOT NULL,
          status text NOT NULL,
          reviewer text,
          review_version_id uuid,
          reviewed_at timestamptz,
          dx_agreed integer,
          dx_total integer,
          px_agreed integer,
          px_total integer,
          CONSTRAINT pk_qa_sample PRIMARY KEY (tenant_id, id),
          CONSTRAINT fk_qa_sample_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
          CONSTRAINT fk_qa_sample_tenant_id_work_item FOREIGN KEY (tenant_id, work_item_id)
            REFERENCES rcm.work_item (tenant_id, id),
          CONSTRAINT fk_qa_sample_tenant_id_original_version_id_coding_version
            FOREIGN KEY (tenant_id, original_version_id) REFERENCES rcm.coding_version (tenant_id, id),
          CONSTRAINT fk_qa_sample_tenant_id_review_version_id_coding_version
            FOREIGN KEY (tenant_id, review_version_id) REFERENCES rcm.coding_version (tenant_id, id),
          CONSTRAINT ck_qa_sample_status CHECK (status IN ('open', 'reviewed'))
        )
        """
    )
    # One sample per completed version: sampling twice does not double a coder's weight.
    op.execute(
        "CREATE UNIQUE INDEX uq_qa_sample_tenant_id_original_version_id ON rcm.qa_sample "
        "(tenant_id, original_version_id)"
    )
    _rls("qa_sample")
    op.execute("GRANT SELECT, INSERT, UPDATE ON rcm.qa_sample TO rcm_app")

    # --- QA reviewers: a flag on the assignment, written by the control role only ----------------------
    op.execute("ALTER TABLE rcm.staff_assignment ADD COLUMN qa_reviewer boolean NOT NULL DEFAULT false")
    op.execute("GRANT UPDATE (qa_reviewer) ON rcm.staff_assignment TO rcm_control")


def downgrade() -> None:
    op.execute("REVOKE UPDATE (qa_reviewer) ON rcm.staff_assignment FROM rcm_control")
    op.execute("ALTER TABLE rcm.staff_assignment DROP COLUMN qa_reviewer")
    for table in ("qa_sample", "fee_schedule", "coding_query", "coding_line", "coding_diagnosis"):
        op.execute(f"DROP TABLE rcm.{table}")
    op.execute("DROP TABLE rcm.coding_version")
    op.execute(
        "SELECT set_config('rcm.tenant_id', coalesce((SELECT string_agg(id::text, ',') FROM rcm.tenant), ''),"
        " true)"
    )
    # Waiting items return to the queue; the events the old vocabulary lacks are dropped with it.
    op.execute("UPDATE rcm.work_item SET status = 'open' WHERE status = 'waiting'")
    op.execute(
        "DELETE FROM rcm.work_item_event WHERE event NOT IN ('created', 'leased', 'released', 'completed',"
        " 'cancelled') OR status = 'waiting'"
    )
    op.execute(
        """
        ALTER TABLE rcm.work_item_event
          DROP CONSTRAINT ck_work_item_event_event,
          ADD CONSTRAINT ck_work_item_event_event
            CHECK (event IN ('created', 'leased', 'released', 'completed', 'cancelled')),
          DROP CONSTRAINT ck_work_item_event_status,
          ADD CONSTRAINT ck_work_item_event_status CHECK (status IN ('open', 'leased', 'done', 'cancelled'))
        """
    )
    op.execute("DROP INDEX rcm.ix_work_item_served")
    op.execute("DROP INDEX rcm.ix_work_item_lease")
    op.execute(
        f"CREATE INDEX ix_work_item_lease ON rcm.work_item (kind, priority, due_at, tenant_id) WHERE {_LEASABLE}"
    )
    op.execute("DROP INDEX rcm.uq_work_item_live_subject")
    op.execute(
        "CREATE UNIQUE INDEX uq_work_item_live_subject ON rcm.work_item "
        f"(tenant_id, kind, subject_type, subject_id) WHERE {_LEASABLE}"
    )
    op.execute(
        """
        ALTER TABLE rcm.work_item
          DROP CONSTRAINT ck_work_item_status,
          ADD CONSTRAINT ck_work_item_status CHECK (status IN ('open', 'leased', 'done', 'cancelled'))
        """
    )
    op.execute("ALTER TABLE rcm.work_item DROP COLUMN leased_at")
    op.execute("SELECT set_config('rcm.tenant_id', '', true)")
