"""The KPIs' money flows read a rollup per UTC posting day, kept as ledger entries are written, instead of the
practice's ledger entries of the period (a year of them: seconds at a million claims).

Revision ID: 0056_kpi_money_day
Revises: 0055_forecast_rollup
Create Date: 2026-12-03

- ``report_posted_day``: per practice and UTC day of ``created_at`` (the KPIs' posting instant, not the
  cash-flow report's day): charges (account ``charges``, negated: billed is positive), payments (accounts
  ``payments`` and ``patient_payments`` on a claim) and contractual adjustments (account ``adjustments``,
  CAS group CO), each a plain sum of the entries. A KPI period is whole UTC days, so its flows are sums of
  its days.
- Kept by the ledger's statement trigger ``ledger_entry_report_posted`` in the writing transaction, under its
  tenant binding (an administrative session without one is bound to the rows' tenants).
- ``rcm.report_rebuild(practice)`` now also rebuilds it (``rcm.report_posted_rebuild``); the existing
  practices are summed here, one by one.
"""

from __future__ import annotations

from alembic import op

revision = "0056_kpi_money_day"
down_revision = "0055_forecast_rollup"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

TABLE = """
CREATE TABLE rcm.report_posted_day (
  tenant_id uuid NOT NULL,
  day date NOT NULL,
  charges_cents bigint NOT NULL,
  payments_cents bigint NOT NULL,
  contractual_cents bigint NOT NULL,
  CONSTRAINT pk_report_posted_day PRIMARY KEY (tenant_id, day)
    INCLUDE (charges_cents, payments_cents, contractual_cents),
  CONSTRAINT fk_report_posted_day_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id)
)
"""

# The day sums of ``{source}`` entries ``n`` (the trigger's new rows, or a practice's ledger).
_SUMS = """
  SELECT n.tenant_id, (n.created_at AT TIME ZONE 'UTC')::date,
         coalesce(-sum(n.amount_cents) FILTER (WHERE n.account = 'charges'), 0),
         coalesce(sum(n.amount_cents) FILTER (WHERE n.account IN ('payments', 'patient_payments')
                                                AND n.claim_id IS NOT NULL), 0),
         coalesce(sum(n.amount_cents) FILTER (WHERE n.account = 'adjustments' AND n.adjustment_group = 'CO'), 0)
    FROM {source} n
   WHERE n.account IN ('charges', 'payments', 'patient_payments', 'adjustments'){where}
   GROUP BY 1, 2
"""
_INTO = "  INSERT INTO rcm.report_posted_day AS d (tenant_id, day, charges_cents, payments_cents, contractual_cents)"

TRIGGER = (
    """
CREATE FUNCTION rcm.report_posted_entries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', (SELECT string_agg(DISTINCT tenant_id::text, ',') FROM new_entries), true);
  END IF;
"""
    + _INTO
    + _SUMS.format(source="new_entries", where="")
    + """  ON CONFLICT ON CONSTRAINT pk_report_posted_day DO UPDATE
    SET charges_cents = d.charges_cents + excluded.charges_cents,
        payments_cents = d.payments_cents + excluded.payments_cents,
        contractual_cents = d.contractual_cents + excluded.contractual_cents;
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', '', true);
  END IF;
  RETURN NULL;
END
$$
"""
)

# Planned for the practice at hand (EXECUTE), as 0055's rebuild.
POSTED_REBUILD = (
    """
CREATE FUNCTION rcm.report_posted_rebuild(practice uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  PERFORM set_config('rcm.tenant_id', practice::text, true);
  EXECUTE 'DELETE FROM rcm.report_posted_day WHERE tenant_id = $1' USING practice;
  EXECUTE $step$"""
    + _INTO
    + _SUMS.format(source="rcm.ledger_entry", where=" AND n.tenant_id = $1")
    + """$step$ USING practice;
  PERFORM set_config('rcm.tenant_id', bound, true);
END
$$
"""
)

REBUILD = """
CREATE OR REPLACE FUNCTION rcm.report_rebuild(practice uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
BEGIN
  PERFORM rcm.report_rebuild_money(practice);
  PERFORM rcm.report_forecast_rebuild(practice);
  PERFORM rcm.report_posted_rebuild(practice);
END
$$
"""

REBUILD_BEFORE = """
CREATE OR REPLACE FUNCTION rcm.report_rebuild(practice uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
BEGIN
  PERFORM rcm.report_rebuild_money(practice);
  PERFORM rcm.report_forecast_rebuild(practice);
END
$$
"""

FUNCTIONS = ("rcm.report_posted_entries()", "rcm.report_posted_rebuild(uuid)")


def upgrade() -> None:
    op.execute(TABLE)
    op.execute("ALTER TABLE rcm.report_posted_day ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rcm.report_posted_day FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON rcm.report_posted_day USING ({_POLICY}) WITH CHECK ({_POLICY})"
    )
    op.execute("GRANT SELECT ON rcm.report_posted_day TO rcm_app")
    op.execute(TRIGGER)
    op.execute(POSTED_REBUILD)
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} OWNER TO rcm_owner")
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(REBUILD)
    op.execute(
        "CREATE TRIGGER ledger_entry_report_posted AFTER INSERT ON rcm.ledger_entry"
        " REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION rcm.report_posted_entries()"
    )
    op.execute("SELECT rcm.report_posted_rebuild(id) FROM rcm.tenant")


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_entry_report_posted ON rcm.ledger_entry")
    op.execute(REBUILD_BEFORE)
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP TABLE rcm.report_posted_day")
