"""The 835 posting's ledger INSERT made cheaper for the database: its two statement-level triggers look up
the rows they need once per posting, claim and claim line named, not once per entry.

Revision ID: 0048_remit_speed
Revises: 0047_report_speed
Create Date: 2026-12-02

An 835 transaction set of 2,500 claims is one INSERT of some 28,000 ledger entries (and 2,500 postings).

- ``rcm.report_rollup_entries`` (0040's rollup trigger) joined every new entry to its posting, claim,
  encounter and claim line: three or four index probes per entry, planned from the join estimates of a
  transition table against row-secured tables, which are far off (a posting join of 5,000 rows was estimated
  at 28 and merged with every posting of the practice). Now the statement's distinct practices, postings and
  claims are gathered first (one pass over the new rows) and handed to the aggregate as parameters
  (``EXECUTE ... USING``): the postings (with their remittance), the claims (with their encounter) and the
  claims' lines are each read by one index scan over the ids given, estimated from the arrays themselves, and
  joined to the new rows by hash. Same rows read, same sums written: only the plan changes. The rebuild
  (``rcm.report_rebuild``) keeps 0040's aggregate (it reads the whole ledger of a practice anyway).
- ``rcm.ledger_check_entries`` (0044's check trigger) locked the named claims with ``(tenant_id, id) IN
  (SELECT ... FROM added)``, which the planner answered with a scan of every claim of the practice. When the
  statement's rows are of one practice (always, for the app role), the claims are locked by one index scan
  over their ids (``EXECUTE ... USING``); the count still has to match the distinct claims named, else the
  statement is refused as before. Rows of several practices (an administrative session) keep the pair-wise
  query.

The DDL is frozen here as plain SQL.
"""

from __future__ import annotations

from alembic import op

revision = "0048_remit_speed"
down_revision = "0047_report_speed"
branch_labels = None
depends_on = None

# The sums both the trigger and 0040's (restored by the downgrade) write from the entries ``e``.
_SUMS = """
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
  SELECT e.tenant_id, e.claim_id, max(e.payer_id), max(e.service_date), NULL::date,
         coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'insurance_receivable'), 0),
         coalesce(sum(e.amount_cents) FILTER (WHERE e.account = 'patient_receivable'), 0)
    FROM e
   WHERE e.claim_id IS NOT NULL AND e.account IN ('insurance_receivable', 'patient_receivable')
   GROUP BY e.tenant_id, e.claim_id
  ON CONFLICT ON CONSTRAINT pk_report_claim_balance DO UPDATE
    SET insurance_cents = b.insurance_cents + excluded.insurance_cents,
        patient_cents = b.patient_cents + excluded.patient_cents
"""

_END = """  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', '', true);
  END IF;
  RETURN NULL;
END
$$
"""

ROLLUP_TRIGGER = (
    """
CREATE OR REPLACE FUNCTION rcm.report_rollup_entries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
  tenants uuid[];
  postings uuid[];
  claims uuid[];
BEGIN
  IF bound = '' THEN
    -- An administrative session (migration, benchmark set-up) binds no tenant: bind the rows' own.
    PERFORM set_config('rcm.tenant_id',
                       (SELECT string_agg(DISTINCT tenant_id::text, ',') FROM new_entries), true);
  END IF;
  -- What the new rows name, once each: the aggregate's lookups are planned from these arrays.
  SELECT array_agg(DISTINCT tenant_id), array_agg(DISTINCT posting_id),
         coalesce(array_agg(DISTINCT claim_id) FILTER (WHERE claim_id IS NOT NULL), '{}')
    INTO tenants, postings, claims FROM new_entries;
  EXECUTE $rollup$
  WITH p AS MATERIALIZED (
    SELECT p.tenant_id, p.id, p.source, r.paid_on
      FROM rcm.ledger_posting p
      LEFT JOIN rcm.remittance r ON r.tenant_id = p.tenant_id AND r.id = p.remittance_id
     WHERE p.tenant_id = ANY ($1) AND p.id = ANY ($2)
  ), c AS MATERIALIZED (
    SELECT c.tenant_id, c.id, c.payer_id, c.service_date, enc.rendering_provider_id, enc.facility_name
      FROM rcm.claim c
      LEFT JOIN rcm.encounter enc ON enc.tenant_id = c.tenant_id AND enc.id = c.encounter_id
     WHERE c.tenant_id = ANY ($1) AND c.id = ANY ($3)
  ), l AS MATERIALIZED (
    SELECT l.tenant_id, l.claim_id, l.line_number, l.procedure_code
      FROM rcm.claim_line l
     WHERE l.tenant_id = ANY ($1) AND l.claim_id = ANY ($3)
  ), e AS (
    SELECT n.tenant_id, n.claim_id, n.account, n.amount_cents, n.adjustment_group, p.source,
           greatest(coalesce(p.paid_on, (n.created_at AT TIME ZONE 'UTC')::date),
                    coalesce(o.open_from, '-infinity'::date)) AS day,
           c.payer_id, c.service_date, c.rendering_provider_id, c.facility_name, l.procedure_code
      FROM new_entries n
      JOIN p ON p.tenant_id = n.tenant_id AND p.id = n.posting_id
      LEFT JOIN c ON c.tenant_id = n.tenant_id AND c.id = n.claim_id
      LEFT JOIN l ON l.tenant_id = n.tenant_id AND l.claim_id = n.claim_id AND l.line_number = n.line_number
      LEFT JOIN (SELECT tenant_id, (max(month) + interval '1 month')::date AS open_from
                   FROM rcm.report_close GROUP BY tenant_id) o ON o.tenant_id = n.tenant_id
"""
    + _SUMS
    + """$rollup$ USING tenants, postings, claims;
"""
    + _END
)

# Both versions' first checks (unchanged): each posting balances, and is in the ledger.
_POSTINGS_CHECKED = """  SELECT posting_id, sum(amount_cents) AS total INTO hit
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
"""

CHECK_ENTRIES = (
    """
CREATE OR REPLACE FUNCTION rcm.ledger_check_entries() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  hit record;
  wanted bigint;
  locked bigint;
  tenants uuid[];
  claims uuid[];
BEGIN
"""
    + _POSTINGS_CHECKED
    + """  SELECT array_agg(DISTINCT tenant_id), array_agg(DISTINCT claim_id) FILTER (WHERE claim_id IS NOT NULL)
    INTO tenants, claims FROM added;
  IF claims IS NULL THEN
    RETURN NULL;
  END IF;
  IF cardinality(tenants) = 1 THEN
    -- One practice: its claims named, by one index scan over their ids.
    wanted := cardinality(claims);
    EXECUTE 'SELECT count(*) FROM (SELECT 1 FROM rcm.claim c WHERE c.tenant_id = $1 AND c.id = ANY ($2)'
            ' FOR KEY SHARE OF c) l'
      INTO locked USING tenants[1], claims;
  ELSE
    SELECT count(*) INTO wanted
      FROM (SELECT DISTINCT tenant_id, claim_id FROM added WHERE claim_id IS NOT NULL) a;
    SELECT count(*) INTO locked FROM (
      SELECT 1 FROM rcm.claim c
        WHERE (c.tenant_id, c.id) IN (SELECT tenant_id, claim_id FROM added WHERE claim_id IS NOT NULL)
        FOR KEY SHARE OF c
    ) l;
  END IF;
  IF locked <> wanted THEN
    RAISE EXCEPTION 'ledger entry naming a claim that is not in its practice'
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$
"""
)


def upgrade() -> None:
    op.execute(ROLLUP_TRIGGER)
    op.execute(CHECK_ENTRIES)


# 0040's and 0044's definitions, for the downgrade.
ROLLUP_BEFORE = (
    """CREATE OR REPLACE FUNCTION rcm.report_rollup_entries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  IF bound = '' THEN
    -- An administrative session (migration, benchmark set-up) binds no tenant: bind the rows' own.
    PERFORM set_config('rcm.tenant_id',
                       (SELECT string_agg(DISTINCT tenant_id::text, ',') FROM new_entries), true);
  END IF;
  EXECUTE $rollup$
  WITH e AS (
    SELECT n.tenant_id, n.claim_id, n.account, n.amount_cents, n.adjustment_group, p.source,
           greatest(coalesce(r.paid_on, (n.created_at AT TIME ZONE 'UTC')::date),
                    coalesce(o.open_from, '-infinity'::date)) AS day,
           c.payer_id, c.service_date, enc.rendering_provider_id, enc.facility_name, l.procedure_code
      FROM new_entries n
      JOIN rcm.ledger_posting p ON p.tenant_id = n.tenant_id AND p.id = n.posting_id
      LEFT JOIN rcm.remittance r ON r.tenant_id = p.tenant_id AND r.id = p.remittance_id
      LEFT JOIN rcm.claim c ON c.tenant_id = n.tenant_id AND c.id = n.claim_id
      LEFT JOIN rcm.encounter enc ON enc.tenant_id = c.tenant_id AND enc.id = c.encounter_id
      LEFT JOIN rcm.claim_line l
        ON l.tenant_id = n.tenant_id AND l.claim_id = n.claim_id AND l.line_number = n.line_number
      LEFT JOIN (SELECT tenant_id, (max(month) + interval '1 month')::date AS open_from
                   FROM rcm.report_close GROUP BY tenant_id) o ON o.tenant_id = n.tenant_id

"""
    + _SUMS
    + """$rollup$;
"""
    + _END
)

CHECK_BEFORE = (
    """CREATE OR REPLACE FUNCTION rcm.ledger_check_entries() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  hit record;
  wanted bigint;
  locked bigint;
BEGIN
"""
    + _POSTINGS_CHECKED
    + """  SELECT count(*) INTO wanted FROM (SELECT DISTINCT tenant_id, claim_id FROM added WHERE claim_id IS NOT NULL) a;
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
)


def downgrade() -> None:
    op.execute(ROLLUP_BEFORE)
    op.execute(CHECK_BEFORE)
