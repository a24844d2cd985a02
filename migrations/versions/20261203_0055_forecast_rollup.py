"""The cash forecast reads rollups kept as claims and ledger entries are written, not the practice's claims,
events and ledger (a full scan per request: seconds at a million claims).

Revision ID: 0055_forecast_rollup
Revises: 0052_remit_write
Create Date: 2026-12-03

- ``report_claim_balance`` (one row per claim, 0040) gains the claim's forecast facts: ``adjudicated_on``
  (the UTC day of its first 835 adjudication, any outcome), ``ended`` (voided or closed now) and
  ``charged_cents`` (its gross charges: the ledger's charge entries, reversals not netted).
- ``report_forecast_claims``: submitted claims per payer, first-submission day, first-adjudication day
  (``'infinity'``: none yet) and ended: how many, and their gross charges.
- ``report_forecast_payments``: payer payments (ledger account ``payments``) per the same payer, submission
  and adjudication days of their claim, and the UTC day they were posted.

Kept in the writing transaction, under its tenant binding (an administrative session without one is bound
to the rows' tenants, as 0040's triggers do):
- the ledger's statement trigger ``ledger_entry_report_rollup_forecast`` (it fires after 0040's
  ``ledger_entry_report_rollup``, by name, which inserts the claim's row first) adds charges to the claim's
  row and payments to ``report_forecast_payments``;
- 0040's ``claim_event`` statement trigger also records the first adjudication day;
- a row trigger on ``rcm.claim``, only when its state enters or leaves voided/closed, sets ``ended`` (a
  claim's row inserted when its claim is voided or closed already is marked at once);
- statement triggers on ``report_claim_balance`` move each changed claim from its old group to its new one,
  and its payments along when its payer, submission or adjudication day changed. Writes there that no
  trigger made (``pg_trigger_depth()`` 1 in the trigger) are the rebuild's, which sums the groups itself.

``rcm.report_rebuild(practice)`` now also rebuilds the forecast's facts and groups
(``rcm.report_forecast_rebuild``); the existing practices are summed here, practice by practice.
"""

from __future__ import annotations

from alembic import op

revision = "0055_forecast_rollup"
down_revision = "0052_remit_write"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_ADJUDICATED = "('paid', 'partially_paid', 'denied')"
_ENDED = "('voided', 'closed')"

TABLES = [
    """
    ALTER TABLE rcm.report_claim_balance
      ADD COLUMN adjudicated_on date,
      ADD COLUMN ended boolean NOT NULL DEFAULT false,
      ADD COLUMN charged_cents bigint NOT NULL DEFAULT 0
    """,
    """
    CREATE TABLE rcm.report_forecast_claims (
      tenant_id uuid NOT NULL,
      payer_id text NOT NULL,
      submitted_on date NOT NULL,
      adjudicated_on date NOT NULL,
      ended boolean NOT NULL,
      claims bigint NOT NULL,
      charged_cents bigint NOT NULL,
      CONSTRAINT pk_report_forecast_claims PRIMARY KEY (tenant_id, payer_id, submitted_on, adjudicated_on, ended)
        INCLUDE (claims, charged_cents),
      CONSTRAINT fk_report_forecast_claims_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id)
    )
    """,
    """
    CREATE TABLE rcm.report_forecast_payments (
      tenant_id uuid NOT NULL,
      payer_id text NOT NULL,
      submitted_on date NOT NULL,
      adjudicated_on date NOT NULL,
      posted_on date NOT NULL,
      cents bigint NOT NULL,
      CONSTRAINT pk_report_forecast_payments
        PRIMARY KEY (tenant_id, payer_id, submitted_on, adjudicated_on, posted_on) INCLUDE (cents),
      CONSTRAINT fk_report_forecast_payments_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id)
    )
    """,
]

_BIND = """
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
"""
_BIND_ROWS = """  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', (SELECT string_agg(DISTINCT tenant_id::text, ',') FROM {rows}), true);
  END IF;
"""
_UNBIND = """  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', '', true);
  END IF;
  RETURN NULL;
END
$$
"""

# A claim's group key in the forecast rollups; ``r`` is a report_claim_balance row.
_KEY = (
    "r.tenant_id, r.payer_id, r.submitted_on, coalesce(r.adjudicated_on, 'infinity'::date) AS adjudicated_on"
)
_ADD_CLAIMS = """
  INSERT INTO rcm.report_forecast_claims AS f
    (tenant_id, payer_id, submitted_on, adjudicated_on, ended, claims, charged_cents)
  SELECT tenant_id, payer_id, submitted_on, adjudicated_on, ended, sum(claims), sum(charged_cents)
    FROM ({deltas}) d
   GROUP BY tenant_id, payer_id, submitted_on, adjudicated_on, ended
  HAVING sum(claims) <> 0 OR sum(charged_cents) <> 0
  ON CONFLICT ON CONSTRAINT pk_report_forecast_claims DO UPDATE
    SET claims = f.claims + excluded.claims, charged_cents = f.charged_cents + excluded.charged_cents;
"""
# The payments of the claims in ``moved`` (sign, tenant_id, claim_id, payer_id, submitted_on,
# adjudicated_on), per the day they were posted, signed.
_MOVE_PAYMENTS = """
  INSERT INTO rcm.report_forecast_payments AS f
    (tenant_id, payer_id, submitted_on, adjudicated_on, posted_on, cents)
  SELECT m.tenant_id, m.payer_id, m.submitted_on, m.adjudicated_on, (n.created_at AT TIME ZONE 'UTC')::date,
         sum(m.sign * n.amount_cents)
    FROM ({moved}) m
    JOIN rcm.ledger_entry n ON n.tenant_id = m.tenant_id AND n.claim_id = m.claim_id
   WHERE n.account = 'payments'
   GROUP BY 1, 2, 3, 4, 5
  HAVING sum(m.sign * n.amount_cents) <> 0
  ON CONFLICT ON CONSTRAINT pk_report_forecast_payments DO UPDATE SET cents = f.cents + excluded.cents;
"""

BALANCE_INSERTED = (
    """
CREATE FUNCTION rcm.report_forecast_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE"""
    + _BIND
    + """  IF pg_trigger_depth() = 1 THEN
    RETURN NULL;
  END IF;
"""
    + _BIND_ROWS.format(rows="new_rows")
    + f"""  UPDATE rcm.report_claim_balance b SET ended = true
    FROM new_rows r JOIN rcm.claim c ON c.tenant_id = r.tenant_id AND c.id = r.claim_id
   WHERE b.tenant_id = r.tenant_id AND b.claim_id = r.claim_id AND c.state IN {_ENDED};
"""
    + _ADD_CLAIMS.format(
        deltas=f"SELECT {_KEY}, r.ended, 1 AS claims, r.charged_cents FROM new_rows r WHERE r.submitted_on IS NOT NULL"
    )
    + _MOVE_PAYMENTS.format(
        moved=f"SELECT 1 AS sign, r.claim_id, {_KEY} FROM new_rows r WHERE r.submitted_on IS NOT NULL"
    )
    + _UNBIND
)

# Old and new row of each claim whose forecast facts changed in the statement.
_CHANGED = """
    SELECT o.*, n.payer_id AS new_payer_id, n.submitted_on AS new_submitted_on,
           n.adjudicated_on AS new_adjudicated_on, n.ended AS new_ended, n.charged_cents AS new_charged_cents
      FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.claim_id = o.claim_id
     WHERE (o.payer_id, o.submitted_on, o.adjudicated_on, o.ended, o.charged_cents)
           IS DISTINCT FROM (n.payer_id, n.submitted_on, n.adjudicated_on, n.ended, n.charged_cents)
"""
_MOVED = "(r.payer_id, r.submitted_on, r.adjudicated_on) IS DISTINCT FROM (r.new_payer_id, r.new_submitted_on, r.new_adjudicated_on)"

# One statement: the claims whose facts changed (one join of the statement's old and new rows; none for the
# balance updates of every posting, which then write nothing) move between groups, in both rollups.
BALANCE_UPDATED = (
    """
CREATE FUNCTION rcm.report_forecast_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE"""
    + _BIND
    + "  IF pg_trigger_depth() = 1 THEN\n    RETURN NULL;\n  END IF;\n"
    + _BIND_ROWS.format(rows="new_rows")
    + "  WITH r AS MATERIALIZED ("
    + _CHANGED
    + "  ), claims AS ("
    + _ADD_CLAIMS.rstrip()
    .rstrip(";")
    .format(
        deltas=f"""SELECT {_KEY}, r.ended, -1 AS claims, -r.charged_cents AS charged_cents
               FROM r WHERE r.submitted_on IS NOT NULL
             UNION ALL
             SELECT r.tenant_id, r.new_payer_id, r.new_submitted_on,
                    coalesce(r.new_adjudicated_on, 'infinity'::date), r.new_ended, 1, r.new_charged_cents
               FROM r WHERE r.new_submitted_on IS NOT NULL"""
    )
    + "\n  )"
    + _MOVE_PAYMENTS.format(
        moved=f"""SELECT -1 AS sign, r.claim_id, {_KEY} FROM r WHERE r.submitted_on IS NOT NULL AND {_MOVED}
             UNION ALL
             SELECT 1, r.claim_id, r.tenant_id, r.new_payer_id, r.new_submitted_on,
                    coalesce(r.new_adjudicated_on, 'infinity'::date)
               FROM r WHERE r.new_submitted_on IS NOT NULL AND {_MOVED}"""
    )
    + _UNBIND
)

LEDGER_TRIGGER = (
    """
CREATE FUNCTION rcm.report_forecast_entries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE"""
    + _BIND
    + """  IF NOT EXISTS (SELECT 1 FROM new_entries WHERE claim_id IS NOT NULL AND account IN ('charges', 'payments')) THEN
    RETURN NULL;
  END IF;
"""
    + _BIND_ROWS.format(rows="new_entries")
    + """  UPDATE rcm.report_claim_balance b SET charged_cents = b.charged_cents + x.cents
    FROM (SELECT tenant_id, claim_id, -sum(amount_cents) AS cents FROM new_entries
           WHERE claim_id IS NOT NULL AND account = 'charges' AND amount_cents < 0
           GROUP BY tenant_id, claim_id) x
   WHERE b.tenant_id = x.tenant_id AND b.claim_id = x.claim_id;
  INSERT INTO rcm.report_forecast_payments AS f
    (tenant_id, payer_id, submitted_on, adjudicated_on, posted_on, cents)
  SELECT """
    + _KEY
    + """, (n.created_at AT TIME ZONE 'UTC')::date, sum(n.amount_cents)
    FROM new_entries n
    JOIN rcm.report_claim_balance r ON r.tenant_id = n.tenant_id AND r.claim_id = n.claim_id
   WHERE n.account = 'payments' AND r.submitted_on IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5
  HAVING sum(n.amount_cents) <> 0
  ON CONFLICT ON CONSTRAINT pk_report_forecast_payments DO UPDATE SET cents = f.cents + excluded.cents;
"""
    + _UNBIND
)

# 0040's: a claim's row gets its first submission day.
_SUBMITTED = """  INSERT INTO rcm.report_claim_balance AS b
    (tenant_id, claim_id, payer_id, service_date, submitted_on, insurance_cents, patient_cents)
  SELECT c.tenant_id, c.id, c.payer_id, c.service_date, x.day, 0, 0
    FROM (SELECT tenant_id, claim_id, min(created_at AT TIME ZONE 'UTC')::date AS day
            FROM new_events WHERE to_state = 'submitted' GROUP BY tenant_id, claim_id) x
    JOIN rcm.claim c ON c.tenant_id = x.tenant_id AND c.id = x.claim_id
  ON CONFLICT ON CONSTRAINT pk_report_claim_balance DO UPDATE
    SET submitted_on = excluded.submitted_on WHERE b.submitted_on IS NULL;
"""

# 0040's body, then the first adjudication.
SUBMITTED_TRIGGER = (
    """
CREATE OR REPLACE FUNCTION rcm.report_claim_submitted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE"""
    + _BIND
    + f"""  IF NOT EXISTS (SELECT 1 FROM new_events
                  WHERE to_state = 'submitted' OR (cause = 'remittance' AND to_state IN {_ADJUDICATED})) THEN
    RETURN NULL;
  END IF;
"""
    + _BIND_ROWS.format(rows="new_events")
    + _SUBMITTED
    + f"""  UPDATE rcm.report_claim_balance b SET adjudicated_on = x.day
    FROM (SELECT tenant_id, claim_id, min(created_at AT TIME ZONE 'UTC')::date AS day
            FROM new_events WHERE cause = 'remittance' AND to_state IN {_ADJUDICATED}
           GROUP BY tenant_id, claim_id) x
   WHERE b.tenant_id = x.tenant_id AND b.claim_id = x.claim_id
     AND (b.adjudicated_on IS NULL OR x.day < b.adjudicated_on);
"""
    + _UNBIND
)

SUBMITTED_BEFORE = (
    """
CREATE OR REPLACE FUNCTION rcm.report_claim_submitted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  IF NOT EXISTS (SELECT 1 FROM new_events WHERE to_state = 'submitted') THEN
    RETURN NULL;
  END IF;
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id',
                       (SELECT string_agg(DISTINCT tenant_id::text, ',') FROM new_events), true);
  END IF;
"""
    + _SUBMITTED
    + """  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', '', true);
  END IF;
  RETURN NULL;
END
$$
"""
)

CLAIM_ENDED = (
    """
CREATE FUNCTION rcm.report_forecast_ended() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE"""
    + _BIND
    + """  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', NEW.tenant_id::text, true);
  END IF;
"""
    + f"""  UPDATE rcm.report_claim_balance SET ended = NEW.state IN {_ENDED}
   WHERE tenant_id = NEW.tenant_id AND claim_id = NEW.id;
"""
    + _UNBIND
)

# Each statement planned for the practice at hand (EXECUTE): a generic plan, made for no practice in
# particular, scans every practice's claims and ledger for each one.
_FORECAST_REBUILD_STEPS = [
    f"""
  UPDATE rcm.report_claim_balance b
     SET adjudicated_on = adj.day, ended = c.state IN {_ENDED}, charged_cents = coalesce(chg.cents, 0)
    FROM rcm.claim c
    LEFT JOIN (SELECT claim_id, min(created_at AT TIME ZONE 'UTC')::date AS day FROM rcm.claim_event
                WHERE tenant_id = $1 AND cause = 'remittance' AND to_state IN {_ADJUDICATED}
                GROUP BY claim_id) adj ON adj.claim_id = c.id
    LEFT JOIN (SELECT claim_id, -sum(amount_cents) AS cents FROM rcm.ledger_entry
                WHERE tenant_id = $1 AND claim_id IS NOT NULL AND account = 'charges' AND amount_cents < 0
                GROUP BY claim_id) chg ON chg.claim_id = c.id
   WHERE c.tenant_id = $1 AND b.tenant_id = $1 AND b.claim_id = c.id
""",
    "DELETE FROM rcm.report_forecast_claims WHERE tenant_id = $1",
    "DELETE FROM rcm.report_forecast_payments WHERE tenant_id = $1",
    f"""
  INSERT INTO rcm.report_forecast_claims
    (tenant_id, payer_id, submitted_on, adjudicated_on, ended, claims, charged_cents)
  SELECT {_KEY}, r.ended, count(*), sum(r.charged_cents)
    FROM rcm.report_claim_balance r
   WHERE r.tenant_id = $1 AND r.submitted_on IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5
""",
    f"""
  INSERT INTO rcm.report_forecast_payments
    (tenant_id, payer_id, submitted_on, adjudicated_on, posted_on, cents)
  SELECT {_KEY}, (n.created_at AT TIME ZONE 'UTC')::date, sum(n.amount_cents)
    FROM rcm.ledger_entry n
    JOIN rcm.report_claim_balance r ON r.tenant_id = n.tenant_id AND r.claim_id = n.claim_id
   WHERE n.tenant_id = $1 AND r.tenant_id = $1 AND n.account = 'payments' AND r.submitted_on IS NOT NULL
   GROUP BY 1, 2, 3, 4, 5
  HAVING sum(n.amount_cents) <> 0
""",
]

FORECAST_REBUILD = (
    """
CREATE FUNCTION rcm.report_forecast_rebuild(practice uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  PERFORM set_config('rcm.tenant_id', practice::text, true);
"""
    + "".join(f"  EXECUTE $step${step}$step$ USING practice;\n" for step in _FORECAST_REBUILD_STEPS)
    + """  PERFORM set_config('rcm.tenant_id', bound, true);
END
$$
"""
)

REBUILD = """
CREATE FUNCTION rcm.report_rebuild(practice uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
BEGIN
  PERFORM rcm.report_rebuild_money(practice);
  PERFORM rcm.report_forecast_rebuild(practice);
END
$$
"""

GRANTS = ("report_forecast_claims", "report_forecast_payments")
FUNCTIONS = (
    "rcm.report_forecast_inserted()",
    "rcm.report_forecast_updated()",
    "rcm.report_forecast_entries()",
    "rcm.report_forecast_ended()",
    "rcm.report_forecast_rebuild(uuid)",
    "rcm.report_rebuild(uuid)",
)
TRIGGERS = [
    "CREATE TRIGGER report_claim_balance_forecast_inserted AFTER INSERT ON rcm.report_claim_balance"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rcm.report_forecast_inserted()",
    "CREATE TRIGGER report_claim_balance_forecast_updated AFTER UPDATE ON rcm.report_claim_balance"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION rcm.report_forecast_updated()",
    "CREATE TRIGGER ledger_entry_report_rollup_forecast AFTER INSERT ON rcm.ledger_entry"
    " REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION rcm.report_forecast_entries()",
    "CREATE TRIGGER claim_report_forecast_ended AFTER UPDATE OF state ON rcm.claim FOR EACH ROW"
    f" WHEN ((OLD.state IN {_ENDED}) IS DISTINCT FROM (NEW.state IN {_ENDED}))"
    " EXECUTE FUNCTION rcm.report_forecast_ended()",
]


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    for table in GRANTS:
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT SELECT ON rcm.{table} TO rcm_app")
    op.execute("ALTER FUNCTION rcm.report_rebuild(uuid) RENAME TO report_rebuild_money")
    for statement in (BALANCE_INSERTED, BALANCE_UPDATED, LEDGER_TRIGGER, SUBMITTED_TRIGGER, CLAIM_ENDED):
        op.execute(statement)
    op.execute(FORECAST_REBUILD)
    op.execute(REBUILD)
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} OWNER TO rcm_owner")
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    for statement in TRIGGERS:
        op.execute(statement)
    # The existing practices, one by one (each bound alone: the policy's tenant list stays one long).
    op.execute("SELECT rcm.report_forecast_rebuild(id) FROM rcm.tenant")


def downgrade() -> None:
    op.execute("DROP TRIGGER claim_report_forecast_ended ON rcm.claim")
    op.execute("DROP TRIGGER ledger_entry_report_rollup_forecast ON rcm.ledger_entry")
    op.execute("DROP TRIGGER report_claim_balance_forecast_updated ON rcm.report_claim_balance")
    op.execute("DROP TRIGGER report_claim_balance_forecast_inserted ON rcm.report_claim_balance")
    op.execute(SUBMITTED_BEFORE)
    op.execute("DROP FUNCTION rcm.report_rebuild(uuid)")
    op.execute("ALTER FUNCTION rcm.report_rebuild_money(uuid) RENAME TO report_rebuild")
    for function in FUNCTIONS[:-1]:
        op.execute(f"DROP FUNCTION {function}")
    for table in GRANTS:
        op.execute(f"DROP TABLE rcm.{table}")
    op.execute(
        "ALTER TABLE rcm.report_claim_balance"
        " DROP COLUMN adjudicated_on, DROP COLUMN ended, DROP COLUMN charged_cents"
    )
