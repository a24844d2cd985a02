"""Money reports (issue 9, point 5): the cash-flow and AR-aging reports' p95 latency for a practice holding
1,000,000 claims among 1,000 practices, beside an index-only scan of the same rollup rows. Target: <= 3x.

    .venv/bin/python bench/report.py [--claims 1000000] [--practices 1000] [--small 100] [--requests 200]
                                     [--runs 3] [--pages 5]
                                     [--reuse]   (measure again on the database a previous run set up)

Set-up (not timed), in a scratch database with the demo seeded (``rcm_bench_report``), set-based in SQL as
the database owner (generate_series, chunks of 100,000 claims):
- ``--practices`` - 1 more practices, each given copies of the demo practice's providers, patients,
  coverages and encounters (same ids, their own tenant), and ``--small`` claims each;
- the demo practice (sunrise-family-medicine) gets ``--claims`` claims over the last two years, each with
  its own encounter (copied from a demo one: its provider and facility), one line (one of 10 CPT codes),
  a submission event, and on the ledger: its charges; for 9 in 10 an 835 payment (one remittance per payer
  and week, paid 3 to 6 weeks after service) with a CO-45 write-off and, for 1 in 3, a PR-2 patient share;
  for half of those the patient's payment. The ledger's deferred balance check is disabled during the
  set-up only (every posting is balanced by construction). The bulk is loaded with the rollup triggers off
  and summed by the migration's backfill function (``rcm.report_rebuild``); the last 50,000 claims of the
  large practice are then loaded with the triggers on (the live path: the ledger's statement trigger
  aggregating each INSERT). The rollups are then checked against the ledger, to the cent.

Timed, sequentially, interleaved (ours, reference, ours...), ``--runs`` runs of ``--requests`` calls each,
VACUUM ANALYZE before each run:
- cash flow: ``rcm.reporting.cashflow.cash_flow`` for the last 12 months, by month and payer (and the
  previous 12 months beside it), in the unit of work its API route gives the practice's owner with a warm
  tenant cache (``provide_tenant_read``: the manifest and keyring looked up once; per call a transaction
  of the app role bound to the practice, run on the driver),
  beside the reference: the app role under RLS counting the same rollup rows (both periods) by an index-only
  scan of the rollup's key;
- AR aging: ``rcm.reporting.aging.ar_aging`` (date-of-service basis), beside an index-only count of the open
  claims' rollup rows (the partial index it reads);
- KPI money (``KpiRepository.money``: charges, payments, contractual adjustments, the 90-day charge window
  and the AR at the period's end, over or under 90 days) for the 30 days ending today and for the same 30
  days a year earlier, beside the statements the KPIs ran before (the practice's ledger summed up to the
  period's end); both answers are printed and must agree to the cent.
Each figure is the median over the runs of each run's p95 of wall time per call, with its range; the
plans of the references are printed in full (with a warning when one is not an index-only scan).
Then the dashboard page (``/app/t/{slug}``: cash flow, KPIs, AR aging, forecast, saved views) is rendered
``--pages`` times (after one warm-up) by the app in-process for the practice's owner, signed in through the dev issuer: its
server time per page (session checks, tenant scope, every report, the HTML), p95 and median.

Uses RCM_DATABASE_URL when set, otherwise the embedded PostgreSQL; drops and creates rcm_bench_report.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
from benchkit import API_TENANT, ROOT, Database, scratch_database, server_url
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from rcm.app import create_app
from rcm.audit.events import RequestInfo
from rcm.cli import DEMO_SECRETS
from rcm.config import APP_ROLE, Settings, app_database_url
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.demo import SEEDER
from rcm.identity.web_session import LOGIN_COOKIE, SESSION_COOKIE
from rcm.kit.db import create_engine, driver_transaction, session_factory, tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.reporting.aging import ar_aging
from rcm.reporting.cashflow import cash_flow
from rcm.reporting.kpi_repository import KpiRepository, PeriodBounds
from rcm.reporting.kpis import bounds
from rcm.reporting.schemas import AgingBasis, Grain, GroupBy
from rcm.tenancy.repository import tenant_by_id
from rcm.tenancy.scope import TenantRead, TenantScope

DB_NAME = "rcm_bench_report"
CHUNK = 100_000
TARGET = 3.0
OWNER = "owner@sunrise.demo.rcm.test"  # the demo practice owner (tenants/demo/people.yaml)
CLONED = ("provider", "patient", "coverage", "encounter")
TRIGGERED = 50_000  # claims of the large practice posted last, with the rollup triggers on
ROLLUP_TRIGGERS = (  # (table, trigger): off for the bulk, which rcm.report_rebuild then sums
    ("ledger_entry", "ledger_entry_report_rollup"),
    ("ledger_entry", "ledger_entry_report_rollup_forecast"),
    ("ledger_entry", "ledger_entry_report_posted"),
    ("ledger_entry", "ledger_entry_report_receivable"),
    ("claim_event", "claim_event_report_submitted"),
    ("claim", "claim_report_forecast_ended"),
)

# The KPIs' money as read before 0050_report_gaps: the practice's ledger up to the period's end.
KPI_FLOWS_BEFORE = """
SELECT coalesce(-sum(amount_cents) FILTER (WHERE account = 'charges' AND created_at >= $2), 0),
       coalesce(sum(amount_cents) FILTER (WHERE account IN ('payments', 'patient_payments')
                                            AND claim_id IS NOT NULL AND created_at >= $2), 0),
       coalesce(sum(amount_cents) FILTER (WHERE account = 'adjustments' AND adjustment_group = 'CO'
                                            AND created_at >= $2), 0),
       coalesce(-sum(amount_cents) FILTER (WHERE account = 'charges' AND created_at >= $4), 0)
  FROM rcm.ledger_entry WHERE tenant_id = $1 AND created_at < $3
"""
KPI_AR_BEFORE = """
SELECT coalesce(sum(b.balance), 0), coalesce(sum(b.balance) FILTER (WHERE c.service_date < $3), 0)
  FROM (SELECT claim_id, sum(amount_cents) AS balance FROM rcm.ledger_entry
         WHERE tenant_id = $1 AND account IN ('insurance_receivable', 'patient_receivable') AND created_at < $2
         GROUP BY claim_id) b
  LEFT JOIN rcm.claim c ON c.tenant_id = $1 AND c.id = b.claim_id
 WHERE b.balance <> 0
"""

# The claims of one chunk of practices: ``targets`` (tenant_id, lo, hi) names the claim numbers to make in
# each. Templates: the practice's encounters, numbered. Dates: service over the last 730 days.
_TEMPLATES = """
CREATE TEMP TABLE tpl AS
SELECT row_number() OVER (PARTITION BY e.tenant_id ORDER BY e.id) - 1 AS k,
       count(*) OVER (PARTITION BY e.tenant_id) AS n, e.*
  FROM rcm.encounter e WHERE e.tenant_id = ANY($1::uuid[]) AND e.external_id NOT LIKE 'BENCH%'
"""

_GEN = """
CREATE TEMP TABLE gen AS
SELECT t.tenant_id, g, g % sizes.n AS k,
       md5(t.tenant_id::text || ':enc:' || g)::uuid AS encounter_id,
       md5(t.tenant_id::text || ':clm:' || g)::uuid AS claim_id,
       (current_date - (g % 730))::date AS dos,
       (ARRAY['99213','99214','99203','93000','36415','80053','85025','71046','90471','G0439'])[1 + g % 10]
         AS cpt,
       (ARRAY['DEMO-MCR','DEMO-BCX'])[1 + g % 2] AS payer,
       5000 + (g * 37) % 20000 AS charge
  FROM targets t
  JOIN (SELECT tenant_id, max(n) AS n FROM tpl GROUP BY tenant_id) sizes ON sizes.tenant_id = t.tenant_id
  CROSS JOIN LATERAL generate_series(t.lo, t.hi) g
"""


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'rcm' AND table_name = $1"
        " ORDER BY ordinal_position",
        table,
    )
    return [r["column_name"] for r in rows]


async def clone_practices(conn: asyncpg.Connection, source: uuid.UUID, count: int) -> list[uuid.UUID]:
    """``count`` practices with copies of the source's providers, patients, coverages and encounters."""
    manifest = await conn.fetchval("SELECT manifest FROM rcm.tenant WHERE id = $1", source)
    ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"rcm-bench-report/{n}") for n in range(count)]
    await conn.execute(
        "INSERT INTO rcm.tenant (id, slug, name, manifest) SELECT id, 'bench-' || n, 'Bench practice ' || n, $2"
        " FROM unnest($1::uuid[]) WITH ORDINALITY AS x(id, n)",
        ids,
        manifest,
    )
    for table in CLONED:
        columns = [c for c in await _columns(conn, table) if c != "tenant_id"]
        listed = ", ".join(columns)
        await conn.execute(
            f"INSERT INTO rcm.{table} (tenant_id, {listed})"  # noqa: S608 - catalog names
            f" SELECT t.id, {', '.join('x.' + c for c in columns)}"
            f" FROM rcm.{table} x CROSS JOIN unnest($2::uuid[]) AS t(id) WHERE x.tenant_id = $1",
            source,
            ids,
        )
    return ids


async def generate(conn: asyncpg.Connection, targets: list[tuple[uuid.UUID, int, int]]) -> None:
    """Encounters, claims, lines, submission events and ledger postings for ``targets``, in one transaction;
    the ledger entries in one INSERT, so the rollup trigger aggregates the chunk once."""
    tenants = list({t for t, _, _ in targets})
    async with conn.transaction():
        await conn.execute("DROP TABLE IF EXISTS tpl, gen, targets")
        await conn.execute("CREATE TEMP TABLE targets (tenant_id uuid, lo int, hi int)")
        await conn.executemany("INSERT INTO targets VALUES ($1, $2, $3)", targets)
        await conn.execute(_TEMPLATES, tenants)
        await conn.execute(_GEN)
        await conn.execute("ANALYZE tpl")
        await conn.execute("ANALYZE gen")
        encounter = await _columns(conn, "encounter")
        override = {
            "id": "gen.encounter_id",
            "external_id": "'BENCH' || gen.g",
            "service_date": "gen.dos",
            "created_at": "gen.dos::timestamptz",
            "updated_at": "gen.dos::timestamptz",
            "documentation": "NULL",
            "total_charge_cents": "gen.charge",
        }
        select = ", ".join(override.get(c, f"tpl.{c}") for c in encounter)
        await conn.execute(
            f"INSERT INTO rcm.encounter ({', '.join(encounter)}) SELECT {select}"  # noqa: S608 - catalog names
            " FROM gen JOIN tpl ON tpl.tenant_id = gen.tenant_id AND tpl.k = gen.k"
        )
        await conn.execute(
            """
            INSERT INTO rcm.claim (tenant_id, id, created_at, encounter_id, patient_id, coverage_id, payer_id,
                                   responsibility, state, frequency, patient_control_number, service_date,
                                   place_of_service, diagnoses, total_charge_cents, state_changed_at, updated_at)
            SELECT gen.tenant_id, gen.claim_id, gen.dos::timestamptz, gen.encounter_id, tpl.patient_id,
                   tpl.coverage_id, gen.payer, 'primary',
                   CASE WHEN gen.g % 10 = 0 THEN 'accepted' ELSE 'paid' END, 1, 'B' || gen.g, gen.dos,
                   '11', '{Z0000}', gen.charge, gen.dos::timestamptz, gen.dos::timestamptz
              FROM gen JOIN tpl ON tpl.tenant_id = gen.tenant_id AND tpl.k = gen.k
            """
        )
        await conn.execute(
            """
            INSERT INTO rcm.claim_line (tenant_id, id, created_at, claim_id, line_number, procedure_code,
                                        modifiers, units, charge_cents, diagnosis_pointers, service_date)
            SELECT tenant_id, md5(tenant_id::text || ':line:' || g)::uuid, dos::timestamptz, claim_id, 1, cpt,
                   '{}', 1, charge, '{1}', dos
              FROM gen
            """
        )
        await conn.execute(
            """
            INSERT INTO rcm.claim_event (tenant_id, id, created_at, claim_id, from_state, to_state, cause)
            SELECT tenant_id, md5(tenant_id::text || ':sub:' || g)::uuid, dos + 2, claim_id, 'ready',
                   'submitted', 'submission'
              FROM gen
            """
        )
        # One remittance per practice, payer and week; paid 3 to 6 weeks after the date of service.
        await conn.execute(
            """
            CREATE TEMP TABLE paid AS
            SELECT gen.*, (date_trunc('week', dos + 21 + (g % 4) * 7))::date AS paid_on,
                   charge * 60 / 100 AS pay,
                   CASE WHEN g % 3 = 0 THEN charge * 15 / 100 ELSE 0 END AS pr
              FROM gen WHERE g % 10 <> 0
            """
        )
        await conn.execute("ANALYZE paid")
        await conn.execute(
            """
            INSERT INTO rcm.remittance (tenant_id, id, set_control_number, payer_name, trace_originator,
                                        trace_number, total_paid_cents, credit_debit, payment_method, paid_on,
                                        state, claim_count)
            SELECT tenant_id, md5(tenant_id::text || ':rem:' || payer || paid_on)::uuid, '0001', payer,
                   '1999999999', payer || to_char(paid_on, 'YYYYMMDD'), sum(pay), 'C', 'ACH', paid_on,
                   'posted', count(*)
              FROM paid GROUP BY tenant_id, payer, paid_on
            ON CONFLICT DO NOTHING
            """
        )
        await conn.execute(
            """
            INSERT INTO rcm.ledger_posting (tenant_id, id, created_at, source, claim_id, remittance_id)
            SELECT tenant_id, md5(tenant_id::text || ':chg:' || g)::uuid, dos + 1, 'claim_built', claim_id, NULL
              FROM gen
            UNION ALL
            SELECT tenant_id, md5(tenant_id::text || ':pay:' || g)::uuid, paid_on + 1, 'remittance_claim',
                   claim_id, md5(tenant_id::text || ':rem:' || payer || paid_on)::uuid
              FROM paid
            UNION ALL
            SELECT tenant_id, md5(tenant_id::text || ':pat:' || g)::uuid, paid_on + 10, 'patient_payment',
                   claim_id, NULL
              FROM paid WHERE g % 6 = 0
            """
        )
        await conn.execute(
            """
            INSERT INTO rcm.ledger_entry (tenant_id, id, created_at, posting_id, account, amount_cents, claim_id,
                                          line_number, adjustment_group, reason_code, remark_codes, segment)
            SELECT tenant_id, gen_random_uuid(), at, posting, account, amount, claim_id, line, grp, reason,
                   '{}', seg
              FROM (
                SELECT tenant_id, (dos + 1)::timestamptz AS at, md5(tenant_id::text || ':chg:' || g)::uuid
                       AS posting, claim_id, x.*
                  FROM gen CROSS JOIN LATERAL (VALUES
                    ('insurance_receivable', charge, 1, NULL, NULL, 'CLM'),
                    ('charges', -charge, 1, NULL, NULL, 'CLM')) x(account, amount, line, grp, reason, seg)
                UNION ALL
                SELECT tenant_id, (paid_on + 1)::timestamptz, md5(tenant_id::text || ':pay:' || g)::uuid,
                       claim_id, x.*
                  FROM paid CROSS JOIN LATERAL (VALUES
                    ('payments', pay, 1, NULL, NULL, 'SVC'),
                    ('insurance_receivable', -charge, 1, NULL, NULL, 'SVC'),
                    ('adjustments', charge - pay - pr, 1, 'CO', '45', 'CAS'),
                    ('patient_receivable', pr, 1, 'PR', '2', 'CAS')) x(account, amount, line, grp, reason, seg)
                 WHERE x.amount <> 0
                UNION ALL
                SELECT tenant_id, (paid_on + 10)::timestamptz, md5(tenant_id::text || ':pat:' || g)::uuid,
                       claim_id, x.*
                  FROM paid CROSS JOIN LATERAL (VALUES
                    ('patient_payments', pr, NULL::int, NULL::text, NULL::text, NULL::text),
                    ('patient_receivable', -pr, NULL, NULL, NULL, NULL)) x(account, amount, line, grp, reason, seg)
                 WHERE g % 6 = 0
              ) entries
            """
        )
        await conn.execute("DROP TABLE tpl, gen, paid, targets")


async def set_up(admin: str, big: uuid.UUID, *, claims: int, practices: int, small: int) -> None:
    """Bulk: the ledger's rollup triggers off, then the migration's backfill function per practice; the
    last ``TRIGGERED`` claims of the large practice are then posted with the triggers on (the live path)."""
    conn = await asyncpg.connect(admin)
    bulk = max(0, claims - TRIGGERED)
    try:
        await conn.execute("ALTER TABLE rcm.ledger_entry DISABLE TRIGGER ledger_entry_checked")
        for table, trigger in ROLLUP_TRIGGERS:
            await conn.execute(f"ALTER TABLE rcm.{table} DISABLE TRIGGER {trigger}")
        started = time.perf_counter()
        others = await clone_practices(conn, big, practices - 1)
        print(f"  {len(others)} practices copied in {time.perf_counter() - started:.0f} s", flush=True)
        for lo in range(1, bulk + 1, CHUNK):
            await generate(conn, [(big, lo, min(lo + CHUNK - 1, bulk))])
            print(
                f"  {min(lo + CHUNK - 1, bulk):,} claims of the large practice ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
        per_chunk = max(1, CHUNK // max(small, 1))
        for start in range(0, len(others), per_chunk):
            await generate(conn, [(t, 1, small) for t in others[start : start + per_chunk]])
        print(
            f"  {len(others) * small:,} claims of the others ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        for table, trigger in ROLLUP_TRIGGERS:
            await conn.execute(f"ALTER TABLE rcm.{table} ENABLE TRIGGER {trigger}")
        await conn.execute("ANALYZE")  # the bulk's statistics, for the backfill's plan
        await conn.execute("SELECT rcm.report_rebuild(id) FROM rcm.tenant")
        print(f"  rollups rebuilt from the ledger ({time.perf_counter() - started:.0f} s)", flush=True)
        if claims > bulk:
            await generate(conn, [(big, bulk + 1, claims)])
            print(
                f"  {claims - bulk:,} more claims posted through the rollup trigger"
                f" ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    finally:
        await conn.execute("ALTER TABLE rcm.ledger_entry ENABLE TRIGGER ledger_entry_checked")
        for table, trigger in ROLLUP_TRIGGERS:
            await conn.execute(f"ALTER TABLE rcm.{table} ENABLE TRIGGER {trigger}")
        await conn.close()


async def check_rollups(admin: str, big: uuid.UUID) -> None:
    """The rollups equal the ledger, for the large practice (as the tests check after random postings)."""
    conn = await asyncpg.connect(admin)
    try:
        ledger = await conn.fetchrow(
            "SELECT sum(-amount_cents) FILTER (WHERE account = 'charges') AS charges,"
            " sum(amount_cents) FILTER (WHERE account = 'payments') AS payments,"
            " sum(amount_cents) FILTER (WHERE account IN ('insurance_receivable', 'patient_receivable')) AS ar"
            " FROM rcm.ledger_entry WHERE tenant_id = $1",
            big,
        )
        rollup = await conn.fetchrow(
            "SELECT sum(amount_cents) FILTER (WHERE kind = 'charge') AS charges,"
            " sum(amount_cents) FILTER (WHERE kind = 'payment') AS payments, count(*) AS rows"
            " FROM rcm.report_ledger_day WHERE tenant_id = $1",
            big,
        )
        ar = await conn.fetchval(
            "SELECT sum(insurance_cents + patient_cents) FROM rcm.report_claim_balance WHERE tenant_id = $1",
            big,
        )
        if (ledger["charges"], ledger["payments"], ledger["ar"]) != (
            rollup["charges"],
            rollup["payments"],
            ar,
        ):
            raise SystemExit(f"rollups differ from the ledger: {dict(ledger)} {dict(rollup)} ar={ar}")
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM rcm.claim WHERE tenant_id = $1) AS claims,"
            " (SELECT count(*) FROM rcm.ledger_entry WHERE tenant_id = $1) AS entries,"
            " (SELECT count(*) FROM rcm.tenant) AS practices,"
            " (SELECT count(*) FROM rcm.claim) AS all_claims",
            big,
        )
        print(
            f"  large practice: {counts['claims']:,} claims, {counts['entries']:,} ledger entries,"
            f" {rollup['rows']:,} rollup rows; {counts['practices']:,} practices, {counts['all_claims']:,} claims"
            " in all; rollups equal the ledger to the cent",
            flush=True,
        )
    finally:
        await conn.close()


@asynccontextmanager
async def request_scopes(
    settings: Settings, tenant_id: TenantId
) -> AsyncIterator[Callable[[], AbstractAsyncContextManager[TenantScope]]]:
    """Scopes as a request of the API has them once its tenant cache is warm: the practice's manifest and
    keyring looked up once, then per call a transaction of the app role bound to the practice (RLS)."""
    async with _warm_practice(settings, tenant_id) as (sessions, context, common):

        @asynccontextmanager
        async def scope() -> AsyncIterator[TenantScope]:
            async with tenant_transaction(sessions, context) as session:
                yield TenantScope(session=session, **common)

        yield scope


@asynccontextmanager
async def request_reads(
    settings: Settings, tenant_id: TenantId
) -> AsyncIterator[Callable[[], AbstractAsyncContextManager[TenantRead]]]:
    """``request_scopes`` for the routes that take ``provide_tenant_read`` (the cash flow): with the tenant
    cache warm and the access settled without rows (the practice's owner), per call a transaction of the
    app role bound to the practice, run on the driver without a session (``driver_transaction``)."""
    async with _warm_practice(settings, tenant_id) as (sessions, context, common):

        @asynccontextmanager
        async def read() -> AsyncIterator[TenantRead]:
            async with driver_transaction(sessions, context) as unit:
                yield TenantRead(unit=unit, **common)

        yield read


@asynccontextmanager
async def _warm_practice(settings: Settings, tenant_id: TenantId) -> AsyncIterator[tuple[Any, ...]]:
    """An engine of the app role, the practice's context, and a scope's other fields (the practice's keyring
    and manifest looked up once)."""
    engine = create_engine(app_database_url(settings), pool_size=2, application_name="bench")
    sessions = session_factory(engine)
    context = TenantContext.single(tenant_id)
    async with tenant_transaction(sessions, context) as session:
        tenant = await tenant_by_id(session, tenant_id)
        keyring = await KeyStore(key_provider(settings)).keyring(session, tenant_id)
    assert tenant is not None
    request = RequestInfo(request_id="bench", trace_id="")
    common = {
        "context": context,
        "principal": SEEDER,
        "keyring": keyring,
        "request": request,
        "manifest": tenant.manifest,
        "access": "bench",
    }
    try:
        yield sessions, context, common
    finally:
        await engine.dispose()


def _cookies(response: httpx.Response) -> dict[str, str]:
    """The cookies a response sets (by hand: httpx keeps no Secure cookie over the test client's http)."""
    found: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        found.load(header)
    return {name: morsel.value for name, morsel in found.items()}


def _path(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def signed_in(client: AsyncTestClient[Litestar], email: str, page: str) -> dict[str, str]:
    """The headers of a browser signed in as ``email`` through the dev issuer, as a person does it:
    /login, the issuer's form, the callback that sets the session cookie."""
    login = await client.get("/login", params={"next": page}, follow_redirects=False)
    authorize = _path(login.headers["location"])
    form = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    issued = await client.post("/dev/oidc/authorize", data={**form, "email": email}, follow_redirects=False)
    callback = await client.get(
        _path(issued.headers["location"]),
        headers={"Cookie": f"{LOGIN_COOKIE}={_cookies(login)[LOGIN_COOKIE]}"},
        follow_redirects=False,
    )
    if callback.status_code != 303:
        raise SystemExit(f"the bench's sign-in failed: {callback.status_code}")
    return {"Cookie": f"{SESSION_COOKIE}={_cookies(callback)[SESSION_COOKIE]}"}


async def dashboard_times(settings: Settings, requests: int) -> list[float]:
    """The dashboard page (``/app/t/{slug}``, its default period) rendered by the app in-process for the
    practice's signed-in owner: the server's time per page, the session's checks and the HTML included."""
    app = create_app(settings)
    page = f"/app/t/{API_TENANT}"
    samples: list[float] = []
    async with AsyncTestClient(app=app) as client:
        headers = await signed_in(client, OWNER, page)
        for n in range(requests + 1):  # a warm-up page first
            started = time.perf_counter()
            response = await client.get(page, headers=headers, follow_redirects=False)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise SystemExit(f"the dashboard answered {response.status_code}")
            if n:
                samples.append(elapsed)
    return samples


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000


async def timed(call: Callable[[], Awaitable[Any]], into: list[float]) -> None:
    started = time.perf_counter()
    await call()
    into.append(time.perf_counter() - started)


async def prepare(args: argparse.Namespace) -> tuple[Database, uuid.UUID]:
    """The scratch database set up (or, with --reuse, the one a previous run set up) and the large practice."""
    started = time.perf_counter()
    if args.reuse:  # the database a previous run set up: measure again
        admin = make_url(server_url()).set(database=DB_NAME, drivername="postgresql")
        app = admin.set(username=APP_ROLE, password=None)
        db = Database(
            admin=admin.render_as_string(hide_password=False),
            app=app.render_as_string(hide_password=False),
            data_dir=ROOT / ".rcm" / f"{DB_NAME}-data",
            clients={},
        )
        big = await db.tenant_id(API_TENANT)
        await check_rollups(db.admin, big)
        await db.vacuum()  # whatever ran there since (the timed reads are index-only scans)
    else:
        db = await scratch_database(DB_NAME)
        big = await db.tenant_id(API_TENANT)
        print(f"set-up: demo seeded ({time.perf_counter() - started:.0f} s)", flush=True)
        await set_up(db.admin, big, claims=args.claims, practices=args.practices, small=args.small)
        await check_rollups(db.admin, big)
        await db.vacuum()
        print(f"set-up done in {time.perf_counter() - started:.0f} s", flush=True)
    return db, big


async def show_plans(
    reference: asyncpg.Connection, big: uuid.UUID, queries: list[tuple[str, str, tuple[Any, ...]]]
) -> None:
    """The references' plans in full, with a warning for one that is not an index-only scan here."""
    async with reference.transaction():
        await reference.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(big))
        for label, sql, params in queries:
            explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + sql
            plan = [r[0].strip() for r in await reference.fetch(explain, *params)]
            print(f"reference plan ({label}): " + " / ".join(plan), flush=True)
            heap = [line for line in plan if line.startswith("Heap Fetches:") and line != "Heap Fetches: 0"]
            if heap or not any("Index Only Scan" in line for line in plan):
                print(
                    f"  WARNING: the {label} reference is not an index-only scan here: it is slower than it should be"
                )


def print_runs(args: argparse.Namespace, runs: list[dict[str, list[float]]]) -> None:
    print(
        f"\nmoney reports, {'the large practice above' if args.reuse else f'{args.claims:,} claims in one of {args.practices:,} practices'},"
        f" {args.runs} runs of {args.requests} interleaved calls each; medians of the runs' p95 [range]"
    )
    for label, ours, theirs in (
        ("cash flow (12 months by month and payer, + previous)", "cash", "cash_ref"),
        ("AR aging (by payer, date of service)", "aging", "aging_ref"),
    ):
        if not runs:
            break
        mine, refs = [_p95(run[ours]) for run in runs], [_p95(run[theirs]) for run in runs]
        ratios = [a / b for a, b in zip(mine, refs, strict=True)]
        print(
            f"{label:<56} ours p95 {statistics.median(mine):7.1f} ms [{min(mine):.1f}-{max(mine):.1f}]"
            f"  index-only scan p95 {statistics.median(refs):7.1f} ms [{min(refs):.1f}-{max(refs):.1f}]"
            f"  ratio {statistics.median(ratios):4.2f} [{min(ratios):.2f}-{max(ratios):.2f}] (target <= {TARGET:.0f})"
        )


async def bench(args: argparse.Namespace) -> None:
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)
    os.environ["RCM_ENV"] = "dev"
    db, big = await prepare(args)
    settings = Settings(
        env="dev",
        database_url=db.admin,
        data_dir=db.data_dir,
        log_level="WARNING",
        rate_limit_per_minute=100_000_000,
        rate_limit_per_ip_per_minute=100_000_000,
    )

    today = datetime.now(UTC).date()
    date_from = date(today.year - 1, today.month, 1)
    previous_from = date_from - timedelta(days=(today - date_from).days + 1)
    reference = await asyncpg.connect(db.app)
    cash_ref = "SELECT count(*) FROM rcm.report_ledger_day WHERE tenant_id = $1 AND day BETWEEN $2 AND $3"
    aging_ref = (
        "SELECT count(*) FROM rcm.report_claim_balance WHERE tenant_id = $1"
        " AND (insurance_cents <> 0 OR patient_cents <> 0)"
    )

    async def ref(sql: str, *params: Any) -> None:
        async with reference.transaction():
            await reference.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(big))
            await reference.fetchval(sql, *params)

    await show_plans(
        reference,
        big,
        [("cash flow", cash_ref, (big, previous_from, today)), ("AR aging", aging_ref, (big,))],
    )

    # Per run (``--runs``, VACUUM ANALYZE before each): ``--requests`` interleaved calls of each side.
    runs: list[dict[str, list[float]]] = []
    async with (
        request_scopes(settings, TenantId(big)) as scopes,
        request_reads(settings, TenantId(big)) as reads,
    ):

        async def ours_cash() -> None:
            async with reads() as read:  # as GET .../reports/cash-flow runs it for the practice's owner
                await cash_flow(
                    read, date_from=date_from, date_to=today, grain=Grain.MONTH, group_by=GroupBy.PAYER
                )

        async def ours_aging() -> None:
            async with scopes() as scope:
                await ar_aging(scope, as_of=today, basis=AgingBasis.SERVICE_DATE)

        async with scopes() as scope:  # the figures, once, so the output shows what was computed
            report = await cash_flow(
                scope, date_from=date_from, date_to=today, grain=Grain.MONTH, group_by=GroupBy.PAYER
            )
            aging = await ar_aging(scope, as_of=today, basis=AgingBasis.SERVICE_DATE)
        print(
            f"cash flow {date_from}..{today}: {len(report.rows)} rows, charges {report.total.charges_cents / 100:,.2f},"
            f" payments {report.total.payments_cents / 100:,.2f} ({report.total.entries:,} entries);"
            f" AR {aging.balance_cents / 100:,.2f} over {sum(r.claims for r in aging.rows):,} open balances",
            flush=True,
        )
        for _ in range(3):  # warm-up
            await ours_cash()
            await ours_aging()
            await ref(cash_ref, big, previous_from, today)
            await ref(aging_ref, big)
        for _ in range(args.runs if args.requests else 0):
            await db.vacuum()
            figures: dict[str, list[float]] = {k: [] for k in ("cash", "cash_ref", "aging", "aging_ref")}
            for _ in range(args.requests):
                await timed(ours_cash, figures["cash"])
                await timed(lambda: ref(cash_ref, big, previous_from, today), figures["cash_ref"])
                await timed(ours_aging, figures["aging"])
                await timed(lambda: ref(aging_ref, big), figures["aging_ref"])
            runs.append(figures)
    await reference.close()

    print_runs(args, runs)
    if args.requests and args.kpi_requests:
        await kpi_money(settings, db.app, big, today, args.kpi_requests)
    if not args.pages:
        return
    pages = await dashboard_times(settings, args.pages)
    print(
        f"{'dashboard page /app/t/' + API_TENANT + ' (server time)':<56} p95 {_p95(pages):7.1f} ms"
        f" (p50 {statistics.median(pages) * 1000:6.1f}), {args.pages} pages rendered in-process"
    )


async def kpi_money(settings: Settings, app_url: str, big: uuid.UUID, today: date, requests: int) -> None:
    """KPI money through a request's scope beside the statements the KPIs ran before 0050_report_gaps, for
    the 30 days ending today and the same 30 days a year earlier; both answers must agree to the cent."""
    periods = {
        "the 30 days ending today": bounds(today - timedelta(days=29), today),
        "the same 30 days a year ago": bounds(today - timedelta(days=365 + 29), today - timedelta(days=365)),
    }
    before_conn = await asyncpg.connect(app_url)

    async def before(span: PeriodBounds) -> dict[str, int]:
        async with before_conn.transaction():
            await before_conn.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(big))
            flows = await before_conn.fetchrow(KPI_FLOWS_BEFORE, big, span.start, span.end, span.window_start)
            ar = await before_conn.fetchrow(KPI_AR_BEFORE, big, span.end, span.aged_before)
        assert flows is not None  # aggregates without GROUP BY: one row each
        assert ar is not None
        keys = ("charges", "payments", "contractual", "window_charges", "ar", "ar_aged")
        return dict(zip(keys, (int(v) for v in (*flows, *ar)), strict=True))

    async with request_scopes(settings, TenantId(big)) as scopes:

        async def ours(span: PeriodBounds) -> dict[str, int]:
            async with scopes() as scope:
                return (await scope.repo(KpiRepository).money(span)).get(big, {})

        for label, span in periods.items():
            mine, theirs = await ours(span), await before(span)
            print(f"KPI money, {label}: ours {mine}, before {theirs}", flush=True)
            if mine != theirs:
                raise SystemExit(f"KPI money differs from the ledger summed up to the period's end ({label})")
            samples: tuple[list[float], list[float]] = ([], [])
            for _ in range(3):  # warm-up
                await ours(span)
                await before(span)
            for _ in range(requests):
                await timed(lambda span=span: ours(span), samples[0])  # type: ignore[misc]
                await timed(lambda span=span: before(span), samples[1])  # type: ignore[misc]
            p95, ref95 = _p95(samples[0]), _p95(samples[1])
            print(
                f"{'KPI money, ' + label:<56} ours p95 {p95:7.1f} ms (p50 {statistics.median(samples[0]) * 1000:6.1f})"
                f"  as before (ledger up to the end) p95 {ref95:7.1f} ms"
                f" (p50 {statistics.median(samples[1]) * 1000:6.1f})  ratio {p95 / ref95:.2g}"
            )
    await before_conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--practices", type=int, default=1_000)
    parser.add_argument("--small", type=int, default=100, help="claims of each other practice")
    parser.add_argument("--requests", type=int, default=200, help="calls of each side per run")
    parser.add_argument("--runs", type=int, default=3, help="runs of --requests calls (medians are printed)")
    parser.add_argument(
        "--pages",
        type=int,
        default=5,
        help="dashboard pages rendered (0: none; --requests 0: the page alone)",
    )
    parser.add_argument(
        "--kpi-requests",
        type=int,
        default=20,
        help="KPI money calls per period (0: none; the year-ago period takes seconds a call at 1M claims)",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="measure again on the database of a previous run"
    )
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
