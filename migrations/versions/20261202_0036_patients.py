"""Patients' balances, payments, refunds, payment plans and statements (issue 8, step c).

Revision ID: 0036_patients
Revises: 0035_secondary
Create Date: 2026-12-02

- ``ix_claim_patient``: a patient's claims, read for every balance and statement.
- The ledger learns patients' money: postings of a patient payment, a refund and a small-balance write-off,
  and the ``patient_payments`` account (money a patient paid).
- ``patient_payment``: a payment or a refund of one (``refund_of``), with its method; ``payment_allocation``:
  the part applied to each claim and the ledger posting that moved it. Both append-only like the ledger (the
  same trigger refuses UPDATE, DELETE and TRUNCATE), the app role may SELECT and INSERT only.
- ``payment_plan`` and ``payment_plan_installment``: the amount, the schedule and each installment's state
  (due, paid, missed); one active plan per patient.
- ``statement_run``: one per practice and cycle (``uq_statement_run_tenant_id_cycle_start``: a second request
  answers the first run), with its progress counts and cursor; ``statement``: each patient's outcome in a
  run and the blobs of its PDF, JSON and CSV (ids only: no file name, no PHI).

Every table is tenant-owned, keyed by tenant first, with RLS enabled and forced.
"""

from __future__ import annotations

from alembic import op

revision = "0036_patients"
down_revision = "0035_secondary"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_SOURCES_BEFORE = "'claim_built', 'claim_voided', 'claim_replaced', 'remittance_claim', 'provider_adjustment'"
_SOURCES = _SOURCES_BEFORE + ", 'patient_payment', 'patient_refund', 'small_balance_write_off'"
_ACCOUNTS_BEFORE = (
    "'insurance_receivable', 'patient_receivable', 'charges', 'payments', 'adjustments', 'interest', "
    "'provider_adjustments', 'unapplied'"
)
_ACCOUNTS = _ACCOUNTS_BEFORE + ", 'patient_payments'"

LEDGER = [
    "ALTER TABLE rcm.ledger_posting DROP CONSTRAINT ck_ledger_posting_source",
    f"ALTER TABLE rcm.ledger_posting ADD CONSTRAINT ck_ledger_posting_source CHECK (source IN ({_SOURCES}))",
    "ALTER TABLE rcm.ledger_entry DROP CONSTRAINT ck_ledger_entry_account",
    f"ALTER TABLE rcm.ledger_entry ADD CONSTRAINT ck_ledger_entry_account CHECK (account IN ({_ACCOUNTS}))",
]

TABLES = [
    "CREATE INDEX ix_claim_patient ON rcm.claim (tenant_id, patient_id)",
    """
    CREATE TABLE rcm.patient_payment (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      patient_id uuid NOT NULL,
      kind text NOT NULL,
      amount_cents bigint NOT NULL,
      method text NOT NULL,
      reference text,
      refund_of uuid,
      plan_id uuid,
      actor text NOT NULL,
      CONSTRAINT pk_patient_payment PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_patient_payment_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_patient_payment_tenant_id_patient_id_patient
        FOREIGN KEY (tenant_id, patient_id) REFERENCES rcm.patient (tenant_id, id),
      CONSTRAINT fk_patient_payment_tenant_id_refund_of_patient_payment
        FOREIGN KEY (tenant_id, refund_of) REFERENCES rcm.patient_payment (tenant_id, id),
      CONSTRAINT ck_patient_payment_kind CHECK (kind IN ('payment', 'refund')),
      CONSTRAINT ck_patient_payment_method CHECK (method IN ('card', 'cash', 'check', 'ach', 'other')),
      CONSTRAINT ck_patient_payment_amount CHECK (amount_cents > 0),
      CONSTRAINT ck_patient_payment_refund_of CHECK ((kind = 'refund') = (refund_of IS NOT NULL))
    )
    """,
    "CREATE INDEX ix_patient_payment_patient ON rcm.patient_payment (tenant_id, patient_id, created_at)",
    """
    CREATE TABLE rcm.payment_allocation (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      payment_id uuid NOT NULL,
      claim_id uuid NOT NULL,
      posting_id uuid NOT NULL,
      amount_cents bigint NOT NULL,
      CONSTRAINT pk_payment_allocation PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_payment_allocation_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_payment_allocation_tenant_id_payment_id_patient_payment
        FOREIGN KEY (tenant_id, payment_id) REFERENCES rcm.patient_payment (tenant_id, id),
      CONSTRAINT fk_payment_allocation_tenant_id_posting_id_ledger_posting
        FOREIGN KEY (tenant_id, posting_id) REFERENCES rcm.ledger_posting (tenant_id, id),
      CONSTRAINT fk_payment_allocation_tenant_id_claim_id_claim
        FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT ck_payment_allocation_amount CHECK (amount_cents > 0)
    )
    """,
    "CREATE INDEX ix_payment_allocation_payment ON rcm.payment_allocation (tenant_id, payment_id)",
    """
    CREATE TABLE rcm.payment_plan (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      patient_id uuid NOT NULL,
      total_cents bigint NOT NULL,
      installment_cents bigint NOT NULL,
      interval_days smallint NOT NULL,
      first_due_on date NOT NULL,
      state text NOT NULL,
      missed_count smallint NOT NULL,
      actor text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_payment_plan PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_payment_plan_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_payment_plan_tenant_id_patient_id_patient
        FOREIGN KEY (tenant_id, patient_id) REFERENCES rcm.patient (tenant_id, id),
      CONSTRAINT ck_payment_plan_state CHECK (state IN ('active', 'completed', 'defaulted', 'cancelled')),
      CONSTRAINT ck_payment_plan_amounts CHECK (total_cents > 0 AND installment_cents > 0)
    )
    """,
    "CREATE UNIQUE INDEX uq_payment_plan_active ON rcm.payment_plan (tenant_id, patient_id) "
    "WHERE state = 'active'",
    """
    CREATE TABLE rcm.payment_plan_installment (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      plan_id uuid NOT NULL,
      number smallint NOT NULL,
      due_on date NOT NULL,
      amount_cents bigint NOT NULL,
      paid_cents bigint NOT NULL,
      state text NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_payment_plan_installment PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_payment_plan_installment_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_payment_plan_installment_tenant_id_plan_id_payment_plan
        FOREIGN KEY (tenant_id, plan_id) REFERENCES rcm.payment_plan (tenant_id, id),
      CONSTRAINT uq_payment_plan_installment_tenant_id_plan_id_number UNIQUE (tenant_id, plan_id, number),
      CONSTRAINT ck_payment_plan_installment_state CHECK (state IN ('due', 'paid', 'missed')),
      CONSTRAINT ck_payment_plan_installment_paid CHECK (paid_cents >= 0 AND paid_cents <= amount_cents)
    )
    """,
    """
    CREATE TABLE rcm.statement_run (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      cycle_start date NOT NULL,
      as_of date NOT NULL,
      status text NOT NULL,
      patients_total integer NOT NULL,
      patients_done integer NOT NULL,
      statements integer NOT NULL,
      written_off integer NOT NULL,
      written_off_cents bigint NOT NULL,
      collections integer NOT NULL,
      plans_defaulted integer NOT NULL,
      cursor_patient uuid,
      submitted_by_kind text NOT NULL,
      submitted_by text NOT NULL,
      submitted_client_id text,
      submitted_user_id uuid,
      failure text,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT pk_statement_run PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_statement_run_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT uq_statement_run_tenant_id_cycle_start UNIQUE (tenant_id, cycle_start),
      CONSTRAINT ck_statement_run_status CHECK (status IN ('queued', 'running', 'done', 'failed'))
    )
    """,
    "CREATE INDEX ix_statement_run_list ON rcm.statement_run (tenant_id, created_at, id)",
    """
    CREATE TABLE rcm.statement (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      run_id uuid NOT NULL,
      patient_id uuid NOT NULL,
      outcome text NOT NULL,
      balance_cents bigint NOT NULL,
      amount_due_cents bigint NOT NULL,
      collections boolean NOT NULL,
      pdf_blob_id uuid,
      json_blob_id uuid,
      csv_blob_id uuid,
      CONSTRAINT pk_statement PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_statement_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_statement_tenant_id_run_id_statement_run
        FOREIGN KEY (tenant_id, run_id) REFERENCES rcm.statement_run (tenant_id, id),
      CONSTRAINT fk_statement_tenant_id_patient_id_patient
        FOREIGN KEY (tenant_id, patient_id) REFERENCES rcm.patient (tenant_id, id),
      CONSTRAINT fk_statement_tenant_id_pdf_blob_id_blob
        FOREIGN KEY (tenant_id, pdf_blob_id) REFERENCES rcm.blob (tenant_id, id),
      CONSTRAINT fk_statement_tenant_id_json_blob_id_blob
        FOREIGN KEY (tenant_id, json_blob_id) REFERENCES rcm.blob (tenant_id, id),
      CONSTRAINT fk_statement_tenant_id_csv_blob_id_blob
        FOREIGN KEY (tenant_id, csv_blob_id) REFERENCES rcm.blob (tenant_id, id),
      CONSTRAINT uq_statement_tenant_id_run_id_patient_id UNIQUE (tenant_id, run_id, patient_id),
      CONSTRAINT ck_statement_outcome CHECK (outcome IN ('sent', 'written_off'))
    )
    """,
    "CREATE INDEX ix_statement_patient ON rcm.statement (tenant_id, patient_id, created_at)",
]

GRANTS = {
    "patient_payment": "SELECT, INSERT",
    "payment_allocation": "SELECT, INSERT",
    "payment_plan": "SELECT, INSERT, UPDATE",
    "payment_plan_installment": "SELECT, INSERT, UPDATE",
    "statement_run": "SELECT, INSERT, UPDATE",
    "statement": "SELECT, INSERT",
}
APPEND_ONLY = ("patient_payment", "payment_allocation")


def upgrade() -> None:
    for statement in LEDGER + TABLES:
        op.execute(statement)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT {privileges} ON rcm.{table} TO rcm_app")
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON rcm.{table} "
            "FOR EACH ROW EXECUTE FUNCTION rcm.ledger_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON rcm.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION rcm.ledger_refuse_change()"
        )


def downgrade() -> None:
    op.execute("DROP INDEX rcm.ix_claim_patient")
    for table in reversed(list(GRANTS)):
        op.execute(f"DROP TABLE rcm.{table}")
    op.execute("ALTER TABLE rcm.ledger_entry DROP CONSTRAINT ck_ledger_entry_account")
    op.execute(
        f"ALTER TABLE rcm.ledger_entry ADD CONSTRAINT ck_ledger_entry_account CHECK (account IN ({_ACCOUNTS_BEFORE}))"
    )
    op.execute("ALTER TABLE rcm.ledger_posting DROP CONSTRAINT ck_ledger_posting_source")
    op.execute(
        "ALTER TABLE rcm.ledger_posting ADD CONSTRAINT ck_ledger_posting_source "
        f"CHECK (source IN ({_SOURCES_BEFORE}))"
    )
