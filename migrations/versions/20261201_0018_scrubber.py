"""Scrubber: scrub runs and their per-rule results (tenant-owned, insert-only history).

Revision ID: 0018_scrubber
Revises: 0014_code_sets
Create Date: 2026-12-01

- ``scrub_run``: one scrub of one encounter (not written on a dry run): its outcome (clean, failed,
  incomplete), counts, who ran it, the billing-queue item it opened or kept open, and the rules that passed
  (``passed``: id, version, source, severity, title, what each looked at, its position in the run).
- ``scrub_result``: one row per rule that fired or could not run, with its position in the run: its id and
  version, where it was declared (built in, or the practice's manifest), severity, verdict (fired,
  not_checked), the findings (biller-readable messages naming codes, lines and dates; no PHI), what it
  looked at, and why it could not run. A clean scrub writes one row in all (its run).

Both are written once and never changed: the app role may SELECT and INSERT only. RLS is enabled and forced
with the same policy as every tenant table. The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0018_scrubber"
down_revision = "0017_fhir_intake"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

TABLES = [
    """
    CREATE TABLE rcm.scrub_run (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      encounter_id uuid NOT NULL,
      outcome text NOT NULL,
      errors smallint NOT NULL,
      warnings smallint NOT NULL,
      not_checked smallint NOT NULL,
      actor text NOT NULL,
      work_item_id uuid,
      passed jsonb NOT NULL,
      CONSTRAINT pk_scrub_run PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_scrub_run_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_scrub_run_tenant_id_encounter_id_encounter
        FOREIGN KEY (tenant_id, encounter_id) REFERENCES rcm.encounter (tenant_id, id),
      CONSTRAINT fk_scrub_run_tenant_id_work_item_id_work_item
        FOREIGN KEY (tenant_id, work_item_id) REFERENCES rcm.work_item (tenant_id, id),
      CONSTRAINT ck_scrub_run_outcome CHECK (outcome IN ('clean', 'failed', 'incomplete'))
    )
    """,
    "CREATE INDEX ix_scrub_run_encounter ON rcm.scrub_run (tenant_id, encounter_id, created_at)",
    """
    CREATE TABLE rcm.scrub_result (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      scrub_run_id uuid NOT NULL,
      position smallint NOT NULL,
      rule_id text NOT NULL,
      rule_version text NOT NULL,
      source text NOT NULL,
      severity text NOT NULL,
      status text NOT NULL,
      title text NOT NULL,
      findings jsonb NOT NULL,
      looked_at text[] NOT NULL,
      reason text,
      CONSTRAINT pk_scrub_result PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_scrub_result_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_scrub_result_tenant_id_scrub_run_id_scrub_run
        FOREIGN KEY (tenant_id, scrub_run_id) REFERENCES rcm.scrub_run (tenant_id, id),
      CONSTRAINT ck_scrub_result_source CHECK (source IN ('builtin', 'manifest')),
      CONSTRAINT ck_scrub_result_severity CHECK (severity IN ('error', 'warning')),
      CONSTRAINT ck_scrub_result_status CHECK (status IN ('fired', 'not_checked'))
    )
    """,
    "CREATE INDEX ix_scrub_result_run ON rcm.scrub_result (tenant_id, scrub_run_id, position)",
]

# History rows are written once and never changed.
GRANTS = {"scrub_run": "SELECT, INSERT", "scrub_result": "SELECT, INSERT"}


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT {privileges} ON rcm.{table} TO rcm_app")


def downgrade() -> None:
    op.execute("DROP TABLE rcm.scrub_result")
    op.execute("DROP TABLE rcm.scrub_run")
