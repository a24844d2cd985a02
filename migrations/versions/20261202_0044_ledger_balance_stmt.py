"""Ledger entries checked per statement, set-based, instead of row by row (the 835 posting's hot path).

Revision ID: 0044_ledger_balance_stmt
Revises: 0042_audit_proofs
Create Date: 2026-12-02

An 835 of 10,000 claims appends some 100,000 ledger entries. Each was checked by three foreign-key triggers
(tenant, posting, claim: a query apiece) as it was inserted and by the deferred ``ledger_entry_balanced``
trigger (another query) at commit: four queries per entry, most of the posting's time. Now one statement-level
trigger, ``ledger_entry_checked`` (AFTER INSERT, over the statement's new rows as a transition table), makes
the same checks in three set-based queries, refusing the statement:

- every posting the new rows belong to balances: the new rows of each posting sum to zero. Postings and their
  entries are inserted together (``LedgerRepository.post``: one statement), the ledger is append-only (UPDATE,
  DELETE, TRUNCATE refused for every role), so every posting balances after every statement, not only at
  commit; an unbalanced one is refused as before (``check_violation``, "does not balance");
- every new row's posting exists, in its practice (``tenant_id, posting_id``): what
  ``fk_ledger_entry_tenant_id_posting_id_ledger_posting`` checked. A posting can never go away afterwards
  (append-only), so checking it on insert is the whole guarantee (``foreign_key_violation``);
- every new row's claim exists, in its practice (``tenant_id, claim_id``), locked FOR KEY SHARE until commit
  as the foreign key's check locked it: what ``fk_ledger_entry_tenant_id_claim_id_claim`` checked. Claims are
  never deleted by the app role (no DELETE privilege); ``claim_keeps_its_ledger`` refuses, for every role,
  deleting a claim (or changing its key) while ledger entries name it: the foreign key's other half;
- ``fk_ledger_entry_tenant_id_tenant`` is dropped: an entry's practice is its posting's (the check above
  pairs ``tenant_id`` with the posting), whose own foreign key names the tenant.

The checks run as the inserting role under its practice's row-level security, as the deferred trigger did:
the rows it may insert are its own practice's, and so are the postings and claims they may name.

Also ``ix_claim_primary_claim`` on ``rcm.claim (tenant_id, primary_claim_id)``: an 835 asks, per chunk of
claims adjudicated, which already have a next payer's claim (``SecondaryRepository.followed``); without it
each such question read every claim of the practice.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0044_ledger_balance_stmt"
down_revision = "0042_audit_proofs"
branch_labels = None
depends_on = None

CHECK_ENTRIES = """
CREATE FUNCTION rcm.ledger_check_entries() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  hit record;
  wanted bigint;
  locked bigint;
BEGIN
  SELECT posting_id, sum(amount_cents) AS total INTO hit
    FROM added GROUP BY tenant_id, posting_id HAVING sum(amount_cents) <> 0 LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger posting % does not balance (off by % cents)', hit.posting_id, hit.total
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT a.posting_id INTO hit FROM (SELECT DISTINCT tenant_id, posting_id FROM added) a
    WHERE NOT EXISTS (
      SELECT 1 FROM rcm.ledger_posting p WHERE p.tenant_id = a.tenant_id AND p.id = a.posting_id
    ) LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'ledger entry of posting % that is not in the ledger', hit.posting_id
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  SELECT count(*) INTO wanted FROM (SELECT DISTINCT tenant_id, claim_id FROM added WHERE claim_id IS NOT NULL) a;
  IF wanted > 0 THEN
    SELECT count(*) INTO locked FROM (
      SELECT 1 FROM rcm.claim c
        WHERE (c.tenant_id, c.id) IN (SELECT tenant_id, claim_id FROM added WHERE claim_id IS NOT NULL)
        FOR KEY SHARE OF c
    ) l;
    IF locked <> wanted THEN
      RAISE EXCEPTION 'ledger entry naming a claim that is not in its practice'
        USING ERRCODE = 'foreign_key_violation';
    END IF;
  END IF;
  RETURN NULL;
END
$$
"""

# The foreign key's other half: a claim named by ledger entries is never deleted nor re-keyed.
CLAIM_KEEPS_LEDGER = """
CREATE FUNCTION rcm.claim_keeps_its_ledger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM rcm.ledger_entry WHERE tenant_id = OLD.tenant_id AND claim_id = OLD.id) THEN
    RAISE EXCEPTION 'claim % has ledger entries (% refused)', OLD.id, TG_OP
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$
"""

_FOREIGN_KEYS = {
    "fk_ledger_entry_tenant_id_tenant": "FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id)",
    "fk_ledger_entry_tenant_id_posting_id_ledger_posting": (
        "FOREIGN KEY (tenant_id, posting_id) REFERENCES rcm.ledger_posting (tenant_id, id)"
    ),
    "fk_ledger_entry_tenant_id_claim_id_claim": "FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id)",
}


def upgrade() -> None:
    op.execute(CHECK_ENTRIES)
    op.execute(CLAIM_KEEPS_LEDGER)
    op.execute("DROP TRIGGER ledger_entry_balanced ON rcm.ledger_entry")
    op.execute("DROP FUNCTION rcm.ledger_check_balanced()")
    op.execute(
        "CREATE TRIGGER ledger_entry_checked AFTER INSERT ON rcm.ledger_entry REFERENCING NEW TABLE AS added "
        "FOR EACH STATEMENT EXECUTE FUNCTION rcm.ledger_check_entries()"
    )
    op.execute(
        "CREATE TRIGGER claim_keeps_its_ledger BEFORE DELETE OR UPDATE OF tenant_id, id ON rcm.claim "
        "FOR EACH ROW EXECUTE FUNCTION rcm.claim_keeps_its_ledger()"
    )
    for name in _FOREIGN_KEYS:
        op.execute(f"ALTER TABLE rcm.ledger_entry DROP CONSTRAINT {name}")
    op.execute(
        "CREATE INDEX ix_claim_primary_claim ON rcm.claim (tenant_id, primary_claim_id)"
        " WHERE primary_claim_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX rcm.ix_claim_primary_claim")
    for name, definition in _FOREIGN_KEYS.items():
        op.execute(f"ALTER TABLE rcm.ledger_entry ADD CONSTRAINT {name} {definition}")
    op.execute("DROP TRIGGER claim_keeps_its_ledger ON rcm.claim")
    op.execute("DROP TRIGGER ledger_entry_checked ON rcm.ledger_entry")
    op.execute("DROP FUNCTION rcm.claim_keeps_its_ledger()")
    op.execute("DROP FUNCTION rcm.ledger_check_entries()")
    op.execute(
        """
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
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON rcm.ledger_entry "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION rcm.ledger_check_balanced()"
    )
