"""The KPIs' AR at a period's end reads a rollup of receivable entries per UTC posting day and date of service,
kept as ledger entries are written, instead of the open balances now less every receivable entry posted since
the end (a year of entries for the comparison period: seconds at a million claims).

Revision ID: 0057_ar_posted_day
Revises: 0056_kpi_money_day
Create Date: 2026-12-03

- ``report_receivable_day``: per practice, UTC day of ``created_at`` (the KPIs' posting instant) and the
  claim's date of service: the sum of the entries on accounts ``insurance_receivable`` and
  ``patient_receivable`` (which always name a claim: ``ck_ledger_entry_receivable_claim``). The AR at a period's
  end is the sum of the days before it (and, for an end that is not midnight UTC, the end's own day read from
  the ledger), and the AR over 90 days the same sum over dates of service before the period's aging bound.
  A claim's date of service is set when it is built and never changes, so a row never moves.
- Kept by the ledger's statement trigger ``ledger_entry_report_receivable`` in the writing transaction, under
  its tenant binding (an administrative session without one is bound to the rows' tenants).
- ``rcm.report_rebuild(practice)`` now also rebuilds it (``rcm.report_receivable_rebuild``); the existing
  practices are summed here, one by one.
"""

from __future__ import annotations

from alembic import op

revision = "0057_ar_posted_day"
down_revision = "0056_kpi_money_day"
branch_labels = None
depends_on = None

_POLICY = "tenant_id = ANY (rcm.current_tenant_ids())"

TABLE = """
CREATE TABLE rcm.report_receivable_day (
  tenant_id uuid NOT NULL,
  day date NOT NULL,
  service_date date NOT NULL,
  amount_cents bigint NOT NULL,
  CONSTRAINT pk_report_receivable_day PRIMARY KEY (tenant_id, day, service_date) INCLUDE (amount_cents),
  CONSTRAINT fk_report_receivable_day_tenant_id_tenant FOREIGN KEY (tenant_id) REFERENCES rcm.tenant (id)
)
"""

# The sums of ``{source}`` receivable entries ``n`` (the trigger's new rows, or a practice's ledger) per
# posting day and the claim's date of service: summed per claim first, then each claim's date of service
# looked up by its key (a few thousand index probes for an 835, never a scan of the practice's claims).
_SUMS = """
  SELECT n.tenant_id, n.day,
         (SELECT c.service_date FROM rcm.claim c WHERE c.tenant_id = n.tenant_id AND c.id = n.claim_id),
         sum(n.cents)
    FROM (SELECT n.tenant_id, (n.created_at AT TIME ZONE 'UTC')::date AS day, n.claim_id,
                 sum(n.amount_cents) AS cents
            FROM {source} n
           WHERE n.account IN ('insurance_receivable', 'patient_receivable'){where}
           GROUP BY 1, 2, 3) n
   GROUP BY 1, 2, 3
"""
_INTO = "  INSERT INTO rcm.report_receivable_day AS d (tenant_id, day, service_date, amount_cents)"

TRIGGER = (
    """
CREATE FUNCTION rcm.report_receivable_entries() RETURNS trigger
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
    + """  ON CONFLICT ON CONSTRAINT pk_report_receivable_day DO UPDATE
    SET amount_cents = d.amount_cents + excluded.amount_cents;
  IF bound = '' THEN
    PERFORM set_config('rcm.tenant_id', '', true);
  END IF;
  RETURN NULL;
END
$$
"""
)

# Planned for the practice at hand (EXECUTE), as 0055's and 0056's rebuilds.
RECEIVABLE_REBUILD = (
    """
CREATE FUNCTION rcm.report_receivable_rebuild(practice uuid) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$
DECLARE
  bound text := coalesce(current_setting('rcm.tenant_id', true), '');
BEGIN
  PERFORM set_config('rcm.tenant_id', practice::text, true);
  EXECUTE 'DELETE FROM rcm.report_receivable_day WHERE tenant_id = $1' USING practice;
  EXECUTE $step$"""
    + _INTO
    + _SUMS.format(source="rcm.ledger_entry", where=" AND n.tenant_id = $1")
    + """$step$ USING practice;
  PERFORM set_config('rcm.tenant_id', bound, true);
END
$$
"""
)

_STEPS = ("report_rebuild_money", "report_forecast_rebuild", "report_posted_rebuild")


def _rebuild(steps: tuple[str, ...]) -> str:
    """``rcm.report_rebuild(practice)`` running each of ``steps`` for the practice."""
    calls = "".join(f"  PERFORM rcm.{step}(practice);\n" for step in steps)
    return (
        "CREATE OR REPLACE FUNCTION rcm.report_rebuild(practice uuid) RETURNS void\n"
        "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, rcm AS $$\n"
        f"BEGIN\n{calls}END\n$$"
    )


REBUILD = _rebuild((*_STEPS, "report_receivable_rebuild"))
REBUILD_BEFORE = _rebuild(_STEPS)

FUNCTIONS = ("rcm.report_receivable_entries()", "rcm.report_receivable_rebuild(uuid)")


def upgrade() -> None:
    op.execute(TABLE)
    op.execute("ALTER TABLE rcm.report_receivable_day ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE rcm.report_receivable_day FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON rcm.report_receivable_day USING ({_POLICY}) WITH CHECK ({_POLICY})"
    )
    op.execute("GRANT SELECT ON rcm.report_receivable_day TO rcm_app")
    op.execute(TRIGGER)
    op.execute(RECEIVABLE_REBUILD)
    for function in FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} OWNER TO rcm_owner")
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(REBUILD)
    op.execute(
        "CREATE TRIGGER ledger_entry_report_receivable AFTER INSERT ON rcm.ledger_entry"
        " REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT"
        " EXECUTE FUNCTION rcm.report_receivable_entries()"
    )
    op.execute("SELECT rcm.report_receivable_rebuild(id) FROM rcm.tenant")


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_entry_report_receivable ON rcm.ledger_entry")
    op.execute(REBUILD_BEFORE)
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP TABLE rcm.report_receivable_day")
