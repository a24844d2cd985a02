"""The ledger: remittances received, and postings of balanced, append-only entries (issue 8, step a).

Revision ID: 0031_ledger
Revises: 0033_institutional
Create Date: 2026-12-02

- ``remittance``: one per 835 transaction set (ST-SE, one payment): payer, TRN02 trace number and TRN03
  originator, BPR02 in cents, the payment date, the payee NPI, the kept interchange it came in
  (``rcm.x12_file``), and whether it was ``posted`` or ``held`` (with the reason). The same trace number,
  originator and amount again is refused by ``uq_remittance_trace``: two workers racing post it once.
- ``ledger_posting``: a group of entries with its source (a claim built, voided or replaced; an 835 claim
  payment; a PLB provider adjustment), the claim and the remittance it concerns.
- ``ledger_entry``: an account, a signed amount in integer cents, the claim and line when known, the
  adjustment group, CARC (or PLB reason) and RARC, and the source segment.

Double entry: a deferred constraint trigger refuses at commit a posting whose entries do not sum to zero.
Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE for every role (the owner included), and the app
role is granted SELECT and INSERT only. Every table is tenant-owned with RLS enabled and forced.
"""

from __future__ import annotations

from alembic import op

revision = "0031_ledger"
down_revision = "0033_institutional"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_STATES = "'posted', 'held'"
_SOURCES = "'claim_built', 'claim_voided', 'claim_replaced', 'remittance_claim', 'provider_adjustment'"
_ACCOUNTS = (
    "'insurance_receivable', 'patient_receivable', 'charges', 'payments', 'adjustments', 'interest', "
    "'provider_adjustments', 'unapplied'"
)

TABLES = [
    f"""
    CREATE TABLE rcm.remittance (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      x12_file_id uuid,
      set_control_number text NOT NULL,
      payer_name text NOT NULL,
      payer_identifier text,
      trace_originator text NOT NULL,
      trace_number text NOT NULL,
      total_paid_cents bigint NOT NULL,
      credit_debit text NOT NULL,
      payment_method text NOT NULL,
      paid_on date NOT NULL,
      payee_npi text,
      state text NOT NULL,
      held_reason text,
      claim_count integer NOT NULL,
      CONSTRAINT pk_remittance PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_remittance_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_remittance_tenant_id_x12_file_id_x12_file
        FOREIGN KEY (tenant_id, x12_file_id) REFERENCES rcm.x12_file (tenant_id, id),
      CONSTRAINT uq_remittance_trace UNIQUE (tenant_id, trace_originator, trace_number, total_paid_cents),
      CONSTRAINT ck_remittance_state CHECK (state IN ({_STATES})),
      CONSTRAINT ck_remittance_held CHECK ((state = 'held') = (held_reason IS NOT NULL))
    )
    """,
    "CREATE INDEX ix_remittance_x12_file_id ON rcm.remittance (tenant_id, x12_file_id)",
    f"""
    CREATE TABLE rcm.ledger_posting (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      source text NOT NULL,
      claim_id uuid,
      remittance_id uuid,
      actor text,
      CONSTRAINT pk_ledger_posting PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_ledger_posting_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_ledger_posting_tenant_id_claim_id_claim
        FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT fk_ledger_posting_tenant_id_remittance_id_remittance
        FOREIGN KEY (tenant_id, remittance_id) REFERENCES rcm.remittance (tenant_id, id),
      CONSTRAINT ck_ledger_posting_source CHECK (source IN ({_SOURCES}))
    )
    """,
    "CREATE INDEX ix_ledger_posting_remittance_id ON rcm.ledger_posting (tenant_id, remittance_id)",
    f"""
    CREATE TABLE rcm.ledger_entry (
      tenant_id uuid NOT NULL,
      id uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      posting_id uuid NOT NULL,
      account text NOT NULL,
      amount_cents bigint NOT NULL,
      claim_id uuid,
      line_number smallint,
      adjustment_group text,
      reason_code text,
      remark_codes text[] NOT NULL,
      segment text,
      segment_position integer,
      CONSTRAINT pk_ledger_entry PRIMARY KEY (tenant_id, id),
      CONSTRAINT fk_ledger_entry_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_ledger_entry_tenant_id_posting_id_ledger_posting
        FOREIGN KEY (tenant_id, posting_id) REFERENCES rcm.ledger_posting (tenant_id, id),
      CONSTRAINT fk_ledger_entry_tenant_id_claim_id_claim
        FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id),
      CONSTRAINT ck_ledger_entry_account CHECK (account IN ({_ACCOUNTS}))
    )
    """,
    "CREATE INDEX ix_ledger_entry_claim_id ON rcm.ledger_entry (tenant_id, claim_id, created_at)",
    "CREATE INDEX ix_ledger_entry_posting_id ON rcm.ledger_entry (tenant_id, posting_id)",
]

REFUSE_CHANGE = """
CREATE FUNCTION rcm.ledger_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  -- Money posted is never rewritten: a correction is a new posting. Fires for every role.
  RAISE EXCEPTION 'rcm ledger records are append-only (% on %)', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END
$$
"""

# Runs at commit (deferred), as the inserting role, under its tenant's RLS: the posting's rows are its own.
CHECK_BALANCED = """
CREATE FUNCTION rcm.ledger_check_balanced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  total bigint;
BEGIN
  SELECT coalesce(sum(amount_cents), 0) INTO total
    FROM rcm.ledger_entry WHERE tenant_id = NEW.tenant_id AND posting_id = NEW.posting_id;
  IF total <> 0 THEN
    RAISE EXCEPTION 'ledger posting % does not balance (off by % cents)', NEW.posting_id, total
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END
$$
"""

GRANTS = {
    "remittance": "SELECT, INSERT",
    "ledger_posting": "SELECT, INSERT",
    "ledger_entry": "SELECT, INSERT",
}


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    op.execute(REFUSE_CHANGE)
    op.execute(CHECK_BALANCED)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT {privileges} ON rcm.{table} TO rcm_app")
        op.execute(
            f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON rcm.{table} "
            "FOR EACH ROW EXECUTE FUNCTION rcm.ledger_refuse_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON rcm.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION rcm.ledger_refuse_change()"
        )
    op.execute(
        "CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON rcm.ledger_entry "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rcm.ledger_check_balanced()"
    )


def downgrade() -> None:
    for table in ("ledger_entry", "ledger_posting", "remittance"):
        op.execute(f"DROP TABLE rcm.{table}")
    op.execute("DROP FUNCTION rcm.ledger_check_balanced()")
    op.execute("DROP FUNCTION rcm.ledger_refuse_change()")
