"""The forecast rollups' trigger on ``report_claim_balance`` updates finds the claims whose facts changed by
aggregating the statement's old and new rows, not by joining them: the planner takes a transition table for
one row, and its nested loop compared every old row with every new one (2,500 claims of an 835 set: 6 M
comparisons; 8,000 claims: 64 M, 12 s).

Revision ID: 0058_forecast_moves
Revises: 0057_ar_posted_day
Create Date: 2026-12-03

- Each old row counts -1 and each new row +1 under its claim and facts (payer, submission day, first
  adjudication day, ended, gross charges); grouped, a claim whose facts did not change sums to zero and
  drops out, one whose facts changed leaves its old facts at -1 and its new ones at +1. Those are exactly
  the claim groups' deltas; grouped again by the payments' key (payer, submission and adjudication days),
  the claims whose key moved carry their payments from the old group to the new one.
- Same results as 0055's join (a statement updates a row once), in time linear in the statement's rows.
"""

from __future__ import annotations

from alembic import op

revision = "0058_forecast_moves"
down_revision = "0057_ar_posted_day"
branch_labels = None
depends_on = None

UPDATED = """
CREATE OR REPLACE FUNCTION rcm.report_forecast_updated() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  IF pg_trigger_depth() = 1 THEN
    RETURN NULL;
  END IF;
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', (SELECT string_agg(DISTINCT tenant_id::text, ',') FROM new_rows), true);
  END IF;
  WITH r AS MATERIALIZED (
    SELECT tenant_id, claim_id, payer_id, submitted_on, adjudicated_on, ended, charged_cents, sum(sign) AS sign
      FROM (SELECT -1 AS sign, o.tenant_id, o.claim_id, o.payer_id, o.submitted_on, o.adjudicated_on, o.ended,
                   o.charged_cents
              FROM old_rows o
            UNION ALL
            SELECT 1, n.tenant_id, n.claim_id, n.payer_id, n.submitted_on, n.adjudicated_on, n.ended,
                   n.charged_cents
              FROM new_rows n) x
     GROUP BY tenant_id, claim_id, payer_id, submitted_on, adjudicated_on, ended, charged_cents
    HAVING sum(sign) <> 0
  ), claims AS (
    INSERT INTO rcm.report_forecast_claims AS f
      (tenant_id, payer_id, submitted_on, adjudicated_on, ended, claims, charged_cents)
    SELECT r.tenant_id, r.payer_id, r.submitted_on, coalesce(r.adjudicated_on, 'infinity'::date), r.ended,
           sum(r.sign), sum(r.sign * r.charged_cents)
      FROM r
     WHERE r.submitted_on IS NOT NULL
     GROUP BY 1, 2, 3, 4, 5
    HAVING sum(r.sign) <> 0 OR sum(r.sign * r.charged_cents) <> 0
    ON CONFLICT ON CONSTRAINT pk_report_forecast_claims DO UPDATE
      SET claims = f.claims + excluded.claims, charged_cents = f.charged_cents + excluded.charged_cents
  )
  INSERT INTO rcm.report_forecast_payments AS f
    (tenant_id, payer_id, submitted_on, adjudicated_on, posted_on, cents)
  SELECT m.tenant_id, m.payer_id, m.submitted_on, m.adjudicated_on, (n.created_at AT TIME ZONE 'UTC')::date,
         sum(m.sign * n.amount_cents)
    FROM (SELECT r.tenant_id, r.claim_id, r.payer_id, r.submitted_on,
                 coalesce(r.adjudicated_on, 'infinity'::date) AS adjudicated_on, sum(r.sign) AS sign
            FROM r
           WHERE r.submitted_on IS NOT NULL
           GROUP BY 1, 2, 3, 4, 5
          HAVING sum(r.sign) <> 0) m
    JOIN rcm.ledger_entry n ON n.tenant_id = m.tenant_id AND n.claim_id = m.claim_id
   WHERE n.account = 'payments'
   GROUP BY 1, 2, 3, 4, 5
  HAVING sum(m.sign * n.amount_cents) <> 0
  ON CONFLICT ON CONSTRAINT pk_report_forecast_payments DO UPDATE SET cents = f.cents + excluded.cents;
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', '', true);
  END IF;
  RETURN NULL;
END
$$
"""

# 0055's body, as pg_get_functiondef printed it.
UPDATED_BEFORE = """
CREATE OR REPLACE FUNCTION rcm.report_forecast_updated()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'rcm'
AS $function$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  IF pg_trigger_depth() = 1 THEN
    RETURN NULL;
  END IF;
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', (SELECT string_agg(DISTINCT tenant_id::text, ',') FROM new_rows), true);
  END IF;
  WITH r AS MATERIALIZED (
    SELECT o.*, n.payer_id AS new_payer_id, n.submitted_on AS new_submitted_on,
           n.adjudicated_on AS new_adjudicated_on, n.ended AS new_ended, n.charged_cents AS new_charged_cents
      FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.claim_id = o.claim_id
     WHERE (o.payer_id, o.submitted_on, o.adjudicated_on, o.ended, o.charged_cents)
           IS DISTINCT FROM (n.payer_id, n.submitted_on, n.adjudicated_on, n.ended, n.charged_cents)
  ), claims AS (
  INSERT INTO rcm.report_forecast_claims AS f
    (tenant_id, payer_id, submitted_on, adjudicated_on, ended, claims, charged_cents)
  SELECT tenant_id, payer_id, submitted_on, adjudicated_on, ended, sum(claims), sum(charged_cents)
    FROM (SELECT r.tenant_id, r.payer_id, r.submitted_on, coalesce(r.adjudicated_on, 'infinity'::date) AS adjudicated_on, r.ended, -1 AS claims, -r.charged_cents AS charged_cents
               FROM r WHERE r.submitted_on IS NOT NULL
             UNION ALL
             SELECT r.tenant_id, r.new_payer_id, r.new_submitted_on,
                    coalesce(r.new_adjudicated_on, 'infinity'::date), r.new_ended, 1, r.new_charged_cents
               FROM r WHERE r.new_submitted_on IS NOT NULL) d
   GROUP BY tenant_id, payer_id, submitted_on, adjudicated_on, ended
  HAVING sum(claims) <> 0 OR sum(charged_cents) <> 0
  ON CONFLICT ON CONSTRAINT pk_report_forecast_claims DO UPDATE
    SET claims = f.claims + excluded.claims, charged_cents = f.charged_cents + excluded.charged_cents
  )
  INSERT INTO rcm.report_forecast_payments AS f
    (tenant_id, payer_id, submitted_on, adjudicated_on, posted_on, cents)
  SELECT m.tenant_id, m.payer_id, m.submitted_on, m.adjudicated_on, (n.created_at AT TIME ZONE 'UTC')::date,
         sum(m.sign * n.amount_cents)
    FROM (SELECT -1 AS sign, r.claim_id, r.tenant_id, r.payer_id, r.submitted_on, coalesce(r.adjudicated_on, 'infinity'::date) AS adjudicated_on FROM r WHERE r.submitted_on IS NOT NULL AND (r.payer_id, r.submitted_on, r.adjudicated_on) IS DISTINCT FROM (r.new_payer_id, r.new_submitted_on, r.new_adjudicated_on)
             UNION ALL
             SELECT 1, r.claim_id, r.tenant_id, r.new_payer_id, r.new_submitted_on,
                    coalesce(r.new_adjudicated_on, 'infinity'::date)
               FROM r WHERE r.new_submitted_on IS NOT NULL AND (r.payer_id, r.submitted_on, r.adjudicated_on) IS DISTINCT FROM (r.new_payer_id, r.new_submitted_on, r.new_adjudicated_on)) m
    JOIN rcm.ledger_entry n ON n.tenant_id = m.tenant_id AND n.claim_id = m.claim_id
   WHERE n.account = 'payments'
   GROUP BY 1, 2, 3, 4, 5
  HAVING sum(m.sign * n.amount_cents) <> 0
  ON CONFLICT ON CONSTRAINT pk_report_forecast_payments DO UPDATE SET cents = f.cents + excluded.cents;
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', '', true);
  END IF;
  RETURN NULL;
END
$function$
"""


def upgrade() -> None:
    op.execute(UPDATED)


def downgrade() -> None:
    op.execute(UPDATED_BEFORE)
