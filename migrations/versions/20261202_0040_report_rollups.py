"""Report rollups kept by the ledger's own inserts, and the month-end close (issue 9, points 1 and 5).

Revision ID: 0040_report_rollups
Revises: 0039_claim_payer_number
Create Date: 2026-12-02

- ``report_ledger_day``: the money of the ledger summed per practice, report day, kind (charge, payment,
  patient payment, refund, adjustment by CAS group, interest, provider adjustment, unapplied), payer,
  rendering provider, procedure code and location (the encounter's facility). Signed so the ordinary case is
  positive: charges billed, money received, write-offs, refunds paid back. Its key carries the sums
  (INCLUDE), so a report reads the index alone.
- ``report_claim_balance``: per claim its open receivables (insurance, patient), payer, date of service and
  first submission date: AR aging reads it, never the ledger.
- ``report_close``: a practice's month-end closes, in order; closing a month closes every earlier one.
- ``report_closed_day`` and ``report_closed_ar``: the frozen figures of closed months (the day rows as they
  stood at the close; AR aging per payer and bucket as of the month's end, from the ledger).

The report day of an entry: its effective date (the 835's payment date BPR16 for a remittance's entries,
otherwise the day it was posted, UTC), moved forward to the first day of the first open month when that
date falls in a month already closed. A closed month therefore never changes; a late entry shows in the
next open period.

Maintenance: one STATEMENT-level AFTER INSERT trigger on ``ledger_entry`` reads the statement's new rows
(a transition table), aggregates them and upserts both rollups: an 835 posting of thousands of entries in
one INSERT costs one aggregate, not a trigger call per row. The aggregate is planned per statement
(EXECUTE), with the transition table's real row count: index lookups for a claim's few entries, hash joins
for a bulk load; a plan cached for the first, small statement of a session would not serve the next large one. A statement trigger on ``claim_event`` records
the first submission date. The functions are SECURITY DEFINER, owned by ``rcm_owner``, with a fixed
search_path: the app role may only SELECT the rollups (and INSERT a close), never write them. They run
under the inserting transaction's tenant binding (RLS forced); an administrative session without one (a
migration, a benchmark's set-up) is bound to the tenants of the inserted rows for the duration.

The existing ledger is summed into the rollups here, practice by practice (``rcm.report_rebuild``).
"""

from __future__ import annotations

from alembic import op

revision = "0040_report_rollups"
down_revision = "0039_claim_payer_number"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"
_KINDS = (
    "'charge', 'payment', 'patient_payment', 'refund', 'adjustment', 'interest', 'provider_adjustment', "
    "'unapplied'"
)
_DIMENSIONS = "day, kind, adjustment_group, payer_id, provider_id, procedure_code, location"

TABLES = [
    f"""
    CREATE TABLE rcm.report_ledger_day (
      tenant_id uuid NOT NULL,
      day date NOT NULL,
      kind text NOT NULL,
      adjustment_group text NOT NULL,
      payer_id text NOT NULL,
      provider_id text NOT NULL,
      procedure_code text NOT NULL,
      location text NOT NULL,
      amount_cents bigint NOT NULL,
      entries bigint NOT NULL,
      CONSTRAINT pk_report_ledger_day PRIMARY KEY (tenant_id, {_DIMENSIONS}) INCLUDE (amount_cents, entries),
      CONSTRAINT fk_report_ledger_day_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT ck_report_ledger_day_kind CHECK (kind IN ({_KINDS}))
    )
    """,
    """
    CREATE TABLE rcm.report_claim_balance (
      tenant_id uuid NOT NULL,
      claim_id uuid NOT NULL,
      payer_id text NOT NULL,
      service_date date NOT NULL,
      submitted_on date,
      insurance_cents bigint NOT NULL,
      patient_cents bigint NOT NULL,
      CONSTRAINT pk_report_claim_balance PRIMARY KEY (tenant_id, claim_id),
      CONSTRAINT fk_report_claim_balance_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_report_claim_balance_tenant_id_claim_id_claim
        FOREIGN KEY (tenant_id, claim_id) REFERENCES rcm.claim (tenant_id, id)
    )
    """,
    # AR aging reads the open claims only, from the index alone.
    "CREATE INDEX ix_report_claim_balance_open ON rcm.report_claim_balance (tenant_id, payer_id)"
    " INCLUDE (service_date, submitted_on, insurance_cents, patient_cents)"
    " WHERE insurance_cents <> 0 OR patient_cents <> 0",
    """
    CREATE TABLE rcm.report_close (
      tenant_id uuid NOT NULL,
      month date NOT NULL,
      closed_at timestamptz NOT NULL DEFAULT now(),
      closed_by text NOT NULL,
      CONSTRAINT pk_report_close PRIMARY KEY (tenant_id, month),
      CONSTRAINT fk_report_close_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT ck_report_close_month CHECK (extract(day FROM month) = 1)
    )
    """,
    f"""
    CREATE TABLE rcm.report_closed_day (
      tenant_id uuid NOT NULL,
      day date NOT NULL,
      kind text NOT NULL,
      adjustment_group text NOT NULL,
      payer_id text NOT NULL,
      provider_id text NOT NULL,
      procedure_code text NOT NULL,
      location text NOT NULL,
      amount_cents bigint NOT NULL,
      entries bigint NOT NULL,
      month date NOT NULL,
      CONSTRAINT pk_report_closed_day PRIMARY KEY (tenant_id, {_DIMENSIONS}) INCLUDE (amount_cents, entries),
      CONSTRAINT fk_report_closed_day_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_report_closed_day_tenant_id_month_report_close
        FOREIGN KEY (tenant_id, month) REFERENCES rcm.report_close (tenant_id, month)
    )
    """,
    """
    CREATE TABLE rcm.report_closed_ar (
      tenant_id uuid NOT NULL,
      month date NOT NULL,
      basis text NOT NULL,
      payer_id text NOT NULL,
      bucket text NOT NULL,
      balance_cents bigint NOT NULL,
      claims bigint NOT NULL,
      CONSTRAINT pk_report_closed_ar PRIMARY KEY (tenant_id, month, basis, payer_id, bucket),
      CONSTRAINT fk_report_closed_ar_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id),
      CONSTRAINT fk_report_closed_ar_tenant_id_month_report_close
        FOREIGN KEY (tenant_id, month) REFERENCES rcm.report_close (tenant_id, month)
    )
    """,
]

# The aggregate both the trigger (over the statement's new rows) and the rebuild (over the ledger) run.
# ``{source}`` is the transition table or rcm.ledger_entry; ``{submitted}`` the first submission date of a
# claim row inserted (the claim_event trigger keeps it afterwards).
_ROLLUP = """
  WITH e AS (
    SELECT n.tenant_id, n.claim_id, n.account, n.amount_cents, n.adjustment_group, p.source,
           greatest(coalesce(r.paid_on, (n.created_at AT TIME ZONE 'UTC')::date),
                    coalesce(o.open_from, '-infinity'::date)) AS day,
           c.payer_id, c.service_date, enc.rendering_provider_id, enc.facility_name, l.procedure_code
      FROM {source} n
      JOIN rcm.ledger_posting p ON p.tenant_id = n.tenant_id AND p.id = n.posting_id
      LEFT JOIN rcm.remittance r ON r.tenant_id = p.tenant_id AND r.id = p.remittance_id
      LEFT JOIN rcm.claim c ON c.tenant_id = n.tenant_id AND c.id = n.claim_id
      LEFT JOIN rcm.encounter enc ON enc.tenant_id = c.tenant_id AND enc.id = c.encounter_id
      LEFT JOIN rcm.claim_line l
        ON l.tenant_id = n.tenant_id AND l.claim_id = n.claim_id AND l.line_number = n.line_number
      LEFT JOIN (SELECT tenant_id, (max(month) + interval '1 month')::date AS open_from
                   FROM rcm.report_close GROUP BY tenant_id) o ON o.tenant_id = n.tenant_id
     {where}
  ), k AS (
    SELECT e.*,
           CASE e.account
             WHEN 'charges' THEN 'charge'
             WHEN 'payments' THEN 'payment'
             WHEN 'patient_payments' THEN
               CASE WHEN e.source = 'patient_refund' THEN 'refund' ELSE 'patient_payment' END
             WHEN 'adjustments' THEN 'adjustment'
             WHEN 'interest' THEN 'interest'
             WHEN 'provider_adjustments' THEN 'provider_adjustment'
             WHEN 'unapplied' THEN 'unapplied'
           END AS kind,
           CASE WHEN e.account IN ('charges', 'unapplied')
                  OR (e.account = 'patient_payments' AND e.source = 'patient_refund')
                THEN -e.amount_cents ELSE e.amount_cents END AS figure
      FROM e
  ), money AS (
    INSERT INTO rcm.report_ledger_day AS d
      (tenant_id, day, kind, adjustment_group, payer_id, provider_id, procedure_code, location,
       amount_cents, entries)
    SELECT tenant_id, day, kind,
           CASE WHEN kind = 'adjustment' THEN coalesce(adjustment_group, '') ELSE '' END,
           coalesce(payer_id, ''), coalesce(rendering_provider_id::text, ''), coalesce(procedure_code, ''),
           coalesce(facility_name, ''), sum(figure), count(*)
      FROM k WHERE kind IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT ON CONSTRAINT pk_report_ledger_day DO UPDATE
      SET amount_cents = d.amount_cents + excluded.amount_cents, entries = d.entries + excluded.entries
  )
  INSERT INTO rcm.report_claim_balance AS b
    (tenant_id, claim_id, payer_id, service_date, submitted_on, insurance_cents, patient_cents)
  SELECT e.tenant_id, e.claim_id, max(e.payer_id), max(e.service_date), {submitted},
         coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'insurance_receivable'), 0),
         coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'patient_receivable'), 0)
    FROM e
   WHERE e.claim_id IS NOT NULL AND e.account IN ('insurance_receivable', 'patient_receivable')
   GROUP BY e.tenant_id, e.claim_id
  ON CONFLICT ON CONSTRAINT pk_report_claim_balance DO UPDATE
    SET insurance_cents = b.insurance_cents + excluded.insurance_cents,
        patient_cents = b.patient_cents + excluded.patient_cents
"""

_FIRST_SUBMITTED = (
    "(SELECT min(ev.created_at AT TIME ZONE 'UTC')::date FROM rcm.claim_event ev"
    " WHERE ev.tenant_id = e.tenant_id AND ev.claim_id = e.claim_id AND ev.to_state = 'submitted')"
)

ROLLUP_TRIGGER = (
    """
CREATE FUNCTION rcm.report_rollup_entries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  IF bound = '' THEN
    -- An administrative session (migration, benchmark set-up) binds no tenant: bind the rows' own.
    PERFORM set_config('rcm.tenant_id',
                       (SELECT string_agg(DISTINCT tenant_id::text, ',') FROM new_entries), true);
  END IF;
"""
    + "  EXECUTE $rollup$"
    + _ROLLUP.format(source="new_entries", where="", submitted="NULL::date")
    + """$rollup$;
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', '', true);
  END IF;
  RETURN NULL;
END
$$
"""
)

REBUILD = (
    """
CREATE FUNCTION rcm.report_rebuild(practice uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  PERFORM set_config('rcm.tenant_id', practice::text, true);
  DELETE FROM rcm.report_ledger_day WHERE tenant_id = practice;
  DELETE FROM rcm.report_claim_balance WHERE tenant_id = practice;
"""
    + "  EXECUTE $rebuild$"
    + _ROLLUP.format(source="rcm.ledger_entry", where="WHERE n.tenant_id = $1", submitted=_FIRST_SUBMITTED)
    + """$rebuild$ USING practice;
  PERFORM set_config('rcm.tenant_id', bound, true);
END
$$
"""
)

SUBMITTED_TRIGGER = """
CREATE FUNCTION rcm.report_claim_submitted() RETURNS trigger
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
  INSERT INTO rcm.report_claim_balance AS b
    (tenant_id, claim_id, payer_id, service_date, submitted_on, insurance_cents, patient_cents)
  SELECT c.tenant_id, c.id, c.payer_id, c.service_date, x.day, 0, 0
    FROM (SELECT tenant_id, claim_id, min(created_at AT TIME ZONE 'UTC')::date AS day
            FROM new_events WHERE to_state = 'submitted' GROUP BY tenant_id, claim_id) x
    JOIN rcm.claim c ON c.tenant_id = x.tenant_id AND c.id = x.claim_id
  ON CONFLICT ON CONSTRAINT pk_report_claim_balance DO UPDATE
    SET submitted_on = excluded.submitted_on WHERE b.submitted_on IS NULL;
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', '', true);
  END IF;
  RETURN NULL;
END
$$
"""

# AR aging buckets by age in days (the same edges as rcm.reporting.aging.BUCKETS).
BUCKET = """
CREATE FUNCTION rcm.report_bucket(age integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN age IS NULL THEN 'unsubmitted'
              WHEN age <= 30 THEN '0-30' WHEN age <= 60 THEN '31-60' WHEN age <= 90 THEN '61-90'
              WHEN age <= 120 THEN '91-120' ELSE '120+' END
$$
"""

# A close, in order: it freezes the day rows of the months it closes, and the AR aging as of its month's
# end, computed from the ledger (entries whose effective date is on or before that day).
CLOSE_TRIGGER = f"""
CREATE FUNCTION rcm.report_freeze_close() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  previous date;
  upto date := (NEW.month + interval '1 month')::date;
BEGIN
  SELECT max(month) INTO previous FROM rcm.report_close WHERE tenant_id = NEW.tenant_id AND month <> NEW.month;
  IF previous IS NOT NULL AND previous >= NEW.month THEN
    RAISE EXCEPTION 'month % is already closed', NEW.month USING ERRCODE = 'unique_violation';
  END IF;
  INSERT INTO rcm.report_closed_day (tenant_id, {_DIMENSIONS}, amount_cents, entries, month)
  SELECT tenant_id, {_DIMENSIONS}, amount_cents, entries, NEW.month
    FROM rcm.report_ledger_day
   WHERE tenant_id = NEW.tenant_id AND day < upto
     AND (previous IS NULL OR day >= (previous + interval '1 month')::date);
  INSERT INTO rcm.report_closed_ar (tenant_id, month, basis, payer_id, bucket, balance_cents, claims)
  WITH bal AS (
    SELECT n.claim_id,
           coalesce(sum(n.amount_cents) FILTER (WHERE n.account = 'insurance_receivable'), 0) AS ins,
           coalesce(sum(n.amount_cents) FILTER (WHERE n.account = 'patient_receivable'), 0) AS pat
      FROM rcm.ledger_entry n
      JOIN rcm.ledger_posting p ON p.tenant_id = n.tenant_id AND p.id = n.posting_id
      LEFT JOIN rcm.remittance r ON r.tenant_id = p.tenant_id AND r.id = p.remittance_id
     WHERE n.tenant_id = NEW.tenant_id AND n.account IN ('insurance_receivable', 'patient_receivable')
       AND coalesce(r.paid_on, (n.created_at AT TIME ZONE 'UTC')::date) < upto
     GROUP BY n.claim_id
  ), parts AS (
    SELECT cb.payer_id, b.ins AS cents, cb.service_date,
           CASE WHEN cb.submitted_on < upto THEN cb.submitted_on END AS submitted_on
      FROM bal b JOIN rcm.report_claim_balance cb ON cb.tenant_id = NEW.tenant_id AND cb.claim_id = b.claim_id
     WHERE b.ins <> 0
    UNION ALL
    SELECT 'patient', b.pat, cb.service_date,
           CASE WHEN cb.submitted_on < upto THEN cb.submitted_on END
      FROM bal b JOIN rcm.report_claim_balance cb ON cb.tenant_id = NEW.tenant_id AND cb.claim_id = b.claim_id
     WHERE b.pat <> 0
  ), based AS (
    SELECT 'service_date' AS basis, payer_id, cents, rcm.report_bucket(upto - 1 - service_date) AS bucket
      FROM parts
    UNION ALL
    SELECT 'submission_date', payer_id, cents, rcm.report_bucket(upto - 1 - submitted_on) FROM parts
  )
  SELECT NEW.tenant_id, NEW.month, basis, payer_id, bucket, sum(cents), count(*)
    FROM based GROUP BY basis, payer_id, bucket;
  RETURN NULL;
END
$$
"""

GRANTS = {
    "report_ledger_day": "SELECT",
    "report_claim_balance": "SELECT",
    "report_close": "SELECT, INSERT",
    "report_closed_day": "SELECT",
    "report_closed_ar": "SELECT",
}

FUNCTIONS = (
    "rcm.report_rollup_entries()",
    "rcm.report_claim_submitted()",
    "rcm.report_freeze_close()",
    "rcm.report_rebuild(uuid)",
)


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)
    for table, privileges in GRANTS.items():
        op.execute(f"ALTER TABLE rcm.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE rcm.{table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON rcm.{table} USING ({_POLICY}) WITH CHECK ({_POLICY})")
        op.execute(f"GRANT {privileges} ON rcm.{table} TO rcm_app")
    op.execute(BUCKET)
    op.execute("GRANT EXECUTE ON FUNCTION rcm.report_bucket(integer) TO rcm_app")
    for statement in (ROLLUP_TRIGGER, REBUILD, SUBMITTED_TRIGGER, CLOSE_TRIGGER):
        op.execute(statement)
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} OWNER TO rcm_owner")
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER ledger_entry_report_rollup AFTER INSERT ON rcm.ledger_entry "
        "REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION rcm.report_rollup_entries()"
    )
    op.execute(
        "CREATE TRIGGER claim_event_report_submitted AFTER INSERT ON rcm.claim_event "
        "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION rcm.report_claim_submitted()"
    )
    op.execute(
        "CREATE TRIGGER report_close_freeze AFTER INSERT ON rcm.report_close "
        "FOR EACH ROW EXECUTE FUNCTION rcm.report_freeze_close()"
    )
    # The ledger so far, practice by practice.
    op.execute("SELECT rcm.report_rebuild(id) FROM rcm.tenant")


def downgrade() -> None:
    op.execute("DROP TRIGGER claim_event_report_submitted ON rcm.claim_event")
    op.execute("DROP TRIGGER ledger_entry_report_rollup ON rcm.ledger_entry")
    for table in ("report_closed_ar", "report_closed_day", "report_close", "report_claim_balance"):
        op.execute(f"DROP TABLE rcm.{table}")
    op.execute("DROP TABLE rcm.report_ledger_day")
    for function in (*FUNCTIONS, "rcm.report_bucket(integer)"):
        op.execute(f"DROP FUNCTION {function}")
