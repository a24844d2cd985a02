"""The 835 posting's ledger INSERT: its two statement-level triggers read only the rows the statement names.

Revision ID: 0052_remit_write
Revises: 0054_adj_version
Create Date: 2026-12-02

0048 handed the postings, claims and claim lines an INSERT names to its triggers as arrays (``id = ANY
($2)``). The planner did not probe the primary keys with them: it read every posting, claim, encounter and
claim line of the practice through an index on ``tenant_id`` alone and filtered (``Rows Removed by Filter``:
the practice's whole ledger), so each 835 transaction set cost more the bigger the practice. Measured on a
set of 2,500 claims (28,000 entries) in a practice of 30,000 claims: the rollup's lookups read some 130,000
buffers, the check's claim lock 45,000.

- Both triggers now look up each distinct row named by the statement's new rows, one primary-key probe
  apiece (a LATERAL subquery behind ``OFFSET 0``, which the planner may not flatten into a scan of the
  practice): posting (and its remittance), claim (and its encounter), claim line by ``(claim_id,
  line_number)``. The work follows the statement's size, not the practice's.
- ``rcm.ledger_check_entries``: the claims named are locked FOR KEY SHARE by one probe each, the count of
  those found compared with the count named, as before, for the rows of one practice or of several (one
  query for both now). The balance and posting checks are unchanged.
- ``rcm.report_rollup_entries``: same rows read, same sums written; the new rows are joined to what was
  looked up by hash (``enable_mergejoin = off`` for the function: the estimates of a CTE over a transition
  table are far off, and the merge joins they chose sorted the statement's rows three times, to disk).
- Both functions run with ``jit = off``: the probes' estimated cost passes ``jit_above_cost`` (and
  ``jit_optimize_above_cost`` for the rollup), and compiling the query took longer than running it (seconds
  for the rollup under load). ``work_mem`` is 32MB for the rollup so the statement's rows hash in memory.

The DDL is frozen here as plain SQL; the downgrade restores 0048's definitions.
"""

from __future__ import annotations

from alembic import op

revision = "0052_remit_write"
down_revision = "0054_adj_version"
branch_labels = None
depends_on = None

# The sums both versions of the trigger write from the entries ``e`` (0048's, unchanged).
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

# The new rows with what they name (``p``, ``c``, ``l``: each version looks them up its own way), as both
# versions of the rollup join them (0048's, unchanged).
_ENTRIES = """  ), e AS (
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

ROLLUP_TRIGGER = (
    """
CREATE OR REPLACE FUNCTION rcm.report_rollup_entries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, rcm SET jit = off SET work_mem = '32MB' SET enable_mergejoin = off AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  IF bound = '' THEN
    -- An administrative session (migration, benchmark set-up) binds no tenant: bind the rows' own.
    PERFORM set_config('rcm.tenant_id',
                       (SELECT string_agg(DISTINCT tenant_id::text, ',') FROM new_entries), true);
  END IF;
  -- What the new rows name, each looked up once by its key (OFFSET 0: a probe per row named, never a scan
  -- of the practice).
  EXECUTE $rollup$
  WITH p AS MATERIALIZED (
    SELECT n.tenant_id, n.posting_id AS id, x.source, x.paid_on
      FROM (SELECT DISTINCT tenant_id, posting_id FROM new_entries) n
      CROSS JOIN LATERAL (
        SELECT p.source, r.paid_on
          FROM rcm.ledger_posting p
          LEFT JOIN rcm.remittance r ON r.tenant_id = p.tenant_id AND r.id = p.remittance_id
         WHERE p.tenant_id = n.tenant_id AND p.id = n.posting_id OFFSET 0) x
  ), c AS MATERIALIZED (
    SELECT n.tenant_id, n.claim_id AS id, x.payer_id, x.service_date, x.rendering_provider_id, x.facility_name
      FROM (SELECT DISTINCT tenant_id, claim_id FROM new_entries WHERE claim_id IS NOT NULL) n
      CROSS JOIN LATERAL (
        SELECT c.payer_id, c.service_date, enc.rendering_provider_id, enc.facility_name
          FROM rcm.claim c
          LEFT JOIN rcm.encounter enc ON enc.tenant_id = c.tenant_id AND enc.id = c.encounter_id
         WHERE c.tenant_id = n.tenant_id AND c.id = n.claim_id OFFSET 0) x
  ), l AS MATERIALIZED (
    SELECT n.tenant_id, n.claim_id, n.line_number, x.procedure_code
      FROM (SELECT DISTINCT tenant_id, claim_id, line_number FROM new_entries
             WHERE claim_id IS NOT NULL AND line_number IS NOT NULL) n
      CROSS JOIN LATERAL (
        SELECT l.procedure_code FROM rcm.claim_line l
         WHERE l.tenant_id = n.tenant_id AND l.claim_id = n.claim_id AND l.line_number = n.line_number
        OFFSET 0) x
"""
    + _ENTRIES
    + _SUMS
    + """$rollup$;
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

# Both versions' last check: as many claims found (and locked) as named.
_CLAIMS_FOUND = """  IF locked <> wanted THEN
    RAISE EXCEPTION 'ledger entry naming a claim that is not in its practice'
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$
"""

CHECK_ENTRIES = (
    """
CREATE OR REPLACE FUNCTION rcm.ledger_check_entries() RETURNS trigger
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
  hit record;
  wanted bigint;
  locked bigint;
BEGIN
"""
    + _POSTINGS_CHECKED
    + """  -- Each claim named, of the row's own practice, locked by its key: as many found as named.
  SELECT count(*), count(l.id) INTO wanted, locked
    FROM (SELECT DISTINCT tenant_id, claim_id FROM added WHERE claim_id IS NOT NULL) a
    LEFT JOIN LATERAL (
      SELECT c.id FROM rcm.claim c WHERE c.tenant_id = a.tenant_id AND c.id = a.claim_id FOR KEY SHARE OF c
    ) l ON true;
"""
    + _CLAIMS_FOUND
)


def upgrade() -> None:
    op.execute(ROLLUP_TRIGGER)
    op.execute(CHECK_ENTRIES)


# 0048's definitions, for the downgrade.
ROLLUP_BEFORE = (
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
"""
    + _ENTRIES
    + _SUMS
    + """$rollup$ USING tenants, postings, claims;
"""
    + _END
)

CHECK_BEFORE = (
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
"""
    + _CLAIMS_FOUND
)


def downgrade() -> None:
    op.execute(ROLLUP_BEFORE)
    op.execute(CHECK_BEFORE)
