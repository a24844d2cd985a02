"""Remittance posting (issue 8, point 6): 835 claims posted per second (parse, match, post, commit) beside
pyx12's segment reader over the same file. Target: ours >= 0.4x, for a 10,000-claim file.

    .venv/bin/python bench/remit.py [--claims 10000] [--sets 4] [--runs 3] [--profile] [--statements]

Set-up (not timed), in a scratch database with the demo seeded (``rcm_bench_remit``):
- a few dozen encounters of the demo practice (sunrise-family-medicine, enrolled with DEMO-MCR) created and
  scrubbed clean through the service code (``create_encounter`` + ``scrub_encounter``): their claims are
  built, their charges posted to the ledger, exactly as in use. One to three lines each;
- per run, ``--claims`` claims cloned from those in SQL, as the database owner: new encounter (its
  diagnoses and charge lines; no documentation, whose ciphertext binds the original row), claim (new id,
  new patient control number), claim lines, events (created, ready, submitted, accepted), a submission batch
  per 500 claims, and the charge posting with its entries. The clones are ``accepted`` (their 277CA
  applied), so posting sees realistic claims with standing charges;
- per run, an 835 paying that run's claims written by our writer (``rcm.x12.remittance_writer``) into a file:
  ``--sets`` transaction sets (payments), each balanced (BPR02 = sum CLP04 - sum PLB, a recoupment and an
  interest PLB in each) and each claim balanced (CLP03 - CLP04 = sum CAS): CO-45 contractual, PR-1
  deductible (every sixth claim), PR-2 coinsurance, one claim in 25 denied (CLP02 4, CO-50), one in 10
  paid as billed; an SVC per claim line with its REF*6R, code, modifiers, units and date. Payee: the
  practice's NPI and TIN. Fresh claims and trace numbers per run: nothing is a duplicate.

Timed, per run, in a fresh process (so its peak RSS is its own): what ``rcm remit import FILE`` runs (the
CLI's own ``rcm.ledger.cli._import``: every set read and checked, routed by the payee, the file kept,
claims matched and moved, the ledger posted, committed), from the file's bytes in memory to the commit;
wall time. Each run is then checked from the database: every set ``posted``, every claim of the run
adjudicated, a remittance posting per CLP with its claim, the claims' insurance receivable at zero.

Reference: ``pyx12.x12file.X12Reader`` walking the same file's segments, counting CLP (as bench/x12.py),
wall time, in this process, from the file's text in memory (ours, too, reads the file before its clock
starts). Beside it, our reader alone (``rcm.ledger.intake.read_headers``, the first step of ours: every set
read and checked, no database), from the same bytes: its ratio to pyx12 bounds what ours can reach, and
what it leaves of the target's time is what matching, posting and committing may take. The CPU of the
posting process and of the database (every PostgreSQL process of this machine: nothing else should use the
server meanwhile) is printed too, and set in units of pyx12's time beside the CPU this machine's cores give
in the time the target allows. Runs are interleaved (ours, pyx12, ours...), medians printed with their
ranges. ``--profile`` and ``--statements`` instrument one more run after the timed ones, printed but not
counted. Nothing is asserted about timings: the figures are printed.

Uses RCM_DATABASE_URL when set, otherwise the embedded PostgreSQL; drops and creates rcm_bench_remit.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from benchkit import API_TENANT, database_cpu_seconds, scratch_database, seeder_scopes

from rcm.claims.building import patient_control_number
from rcm.cli import DEMO_SECRETS
from rcm.config import Settings
from rcm.demo import CODES
from rcm.encounters.schemas import ChargeLineIn, DiagnosisIn, EncounterCreate
from rcm.encounters.service import create_encounter
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.ledger.intake import read_headers
from rcm.patients.schemas import Address, CoverageCreate, PatientCreate
from rcm.providers.schemas import ProviderCreate
from rcm.scrub.service import scrub_encounter
from rcm.x12 import Party
from rcm.x12 import remittance_model as rm
from rcm.x12.remittance_writer import remittance_interchange
from x12 import _peak_kib as peak_kib
from x12 import count_pyx12

DB_NAME = "rcm_bench_remit"
FILES = Path(tempfile.gettempdir()) / "rcm-bench-remit"
TEMPLATES = 36  # claims made through the service code, cloned per run
PER_BATCH = 500  # cloned claims per submission batch
TARGET = 0.4  # ours / pyx12's segment reader
PAYEE_NPI = "1234567893"  # sunrise-family-medicine's billing provider (tenants/demo)
PAYEE_TIN = "123456789"  # its DEMO_TIN_SUNRISE
SUBMITTER = "DEMOSUB01"
# Extra lines of the multi-line templates (the first line is the demo's visit code).
EXTRA_LINES = [[], [("G2211", 1600, [])], [("G0008", 2500, []), ("Q2035", 1800, [])]]


# -- set-up: claims through the service code, then cloned


async def template_claims(settings: Settings, tenant_id: TenantId) -> None:
    """``TEMPLATES`` encounters scrubbed clean: their claims built (ready) and their charges posted."""
    secrets = SecretResolver(settings.secrets_dir)
    async with seeder_scopes(settings, tenant_id, "bench.remit") as scopes, scopes() as scope:
        for index in range(TEMPLATES):
            code, cents, diagnoses = CODES[index % len(CODES)]
            pointers = list(range(1, len(diagnoses) + 1))
            extra = EXTRA_LINES[(index // len(CODES)) % len(EXTRA_LINES)]
            charges = [
                ChargeLineIn(
                    procedure_code=code,
                    charge_cents=cents,
                    modifiers=["25"] if extra else [],
                    diagnosis_pointers=pointers,
                ),
                *(
                    ChargeLineIn(procedure_code=c, charge_cents=amount, modifiers=m, diagnosis_pointers=[1])
                    for c, amount, m in extra
                ),
            ]
            encounter = await create_encounter(
                scope,
                EncounterCreate(
                    external_id=f"BENCH-REMIT-TEMPLATE-{index}",
                    service_date=date.today() - timedelta(days=20 + index % 10),
                    place_of_service="11",
                    patient=PatientCreate(
                        mrn=f"BENCH-REMIT-{index}",
                        given_name="Bench",
                        family_name="Demopatient",
                        birth_date=date(1950, 1, 1) + timedelta(days=97 * index),
                        sex="female" if index % 2 else "male",
                        address=Address(
                            line1="1 Bench Way", city="Springfield", state="IL", postal_code="62701"
                        ),
                    ),
                    coverage=CoverageCreate(payer_id="DEMO-MCR", member_id=f"BREMIT{index:05d}"),
                    rendering_provider=ProviderCreate(npi="1910000003", name="Dr Demo Renderer (DEMO)"),
                    documentation="DEMO: bench visit.",
                    diagnoses=[DiagnosisIn(code=c) for c in diagnoses],
                    charges=charges,
                ),
                scope.manifest,
            )
            report = await scrub_encounter(scope, encounter.id, dry_run=False, secrets=secrets)
            if report.errors:
                raise SystemExit(f"template {index} did not scrub clean: {report.fired}")


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    code: str
    modifiers: tuple[str, ...]
    units: int
    charge: int
    service_date: date


@dataclass(frozen=True, slots=True)
class Cloned:
    claim_id: uuid.UUID
    pcn: str
    member_id: str
    lines: tuple[Line, ...]


async def _rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(sql, *args)]


async def _copy(conn: asyncpg.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        columns = list(rows[0])
        records = [tuple(row[c] for c in columns) for row in rows]
        await conn.copy_records_to_table(table, schema_name="rcm", columns=columns, records=records)


async def clone_claims(admin: str, tenant_id: uuid.UUID, count: int, tag: str, run: int) -> list[Cloned]:
    """``count`` accepted claims cloned from the templates, with everything posting reads (see above)."""
    conn = await asyncpg.connect(admin)
    try:
        claims = await _rows(
            conn,
            "SELECT c.* FROM rcm.claim c JOIN rcm.encounter e ON e.tenant_id = c.tenant_id"
            " AND e.id = c.encounter_id WHERE c.tenant_id = $1 AND e.external_id LIKE 'BENCH-REMIT-TEMPLATE-%'"
            " ORDER BY e.external_id",
            tenant_id,
        )
        if len(claims) != TEMPLATES:
            raise SystemExit(f"{len(claims)} template claims, expected {TEMPLATES}")
        claim_ids = [c["id"] for c in claims]
        encounter_ids = [c["encounter_id"] for c in claims]

        def by(rows: list[dict[str, Any]], key: str) -> dict[uuid.UUID, list[dict[str, Any]]]:
            grouped: dict[uuid.UUID, list[dict[str, Any]]] = {}
            for row in rows:
                grouped.setdefault(row[key], []).append(row)
            return grouped

        encounters = {
            r["id"]: r
            for r in await _rows(
                conn,
                "SELECT * FROM rcm.encounter WHERE tenant_id = $1 AND id = ANY($2)",
                tenant_id,
                encounter_ids,
            )
        }
        diagnoses = by(
            await _rows(
                conn,
                "SELECT * FROM rcm.diagnosis WHERE tenant_id = $1 AND encounter_id = ANY($2)",
                tenant_id,
                encounter_ids,
            ),
            "encounter_id",
        )
        charge_lines = by(
            await _rows(
                conn,
                "SELECT * FROM rcm.charge_line WHERE tenant_id = $1 AND encounter_id = ANY($2)",
                tenant_id,
                encounter_ids,
            ),
            "encounter_id",
        )
        lines = by(
            await _rows(
                conn,
                "SELECT * FROM rcm.claim_line WHERE tenant_id = $1 AND claim_id = ANY($2) ORDER BY line_number",
                tenant_id,
                claim_ids,
            ),
            "claim_id",
        )
        events = by(
            await _rows(
                conn,
                "SELECT * FROM rcm.claim_event WHERE tenant_id = $1 AND claim_id = ANY($2) ORDER BY created_at",
                tenant_id,
                claim_ids,
            ),
            "claim_id",
        )
        postings = by(
            await _rows(
                conn,
                "SELECT * FROM rcm.ledger_posting WHERE tenant_id = $1 AND claim_id = ANY($2)"
                " AND source = 'claim_built'",
                tenant_id,
                claim_ids,
            ),
            "claim_id",
        )
        entries = by(
            await _rows(
                conn,
                "SELECT * FROM rcm.ledger_entry WHERE tenant_id = $1 AND posting_id = ANY($2)",
                tenant_id,
                [p["id"] for rows in postings.values() for p in rows],
            ),
            "posting_id",
        )
        # The member id is sealed (PHI): the 835's NM1*QC carries the one the template was made with.
        members = {
            r["id"]: f"BREMIT{int(r['external_id'].rsplit('-', 1)[1]):05d}" for r in encounters.values()
        }
        now = datetime.now(UTC)
        out: dict[str, list[dict[str, Any]]] = {
            k: []
            for k in (
                "submission_batch",
                "encounter",
                "diagnosis",
                "charge_line",
                "claim",
                "claim_line",
                "claim_event",
                "ledger_posting",
                "ledger_entry",
            )
        }
        cloned: list[Cloned] = []
        batch_id = None
        for index in range(count):
            if index % PER_BATCH == 0:
                batch_id = uuid.uuid4()
                number = len(out["submission_batch"]) + 1
                out["submission_batch"].append(
                    {
                        "tenant_id": tenant_id,
                        "id": batch_id,
                        "created_at": now,
                        "payer_id": "DEMO-MCR",
                        "connector": "sandbox",
                        "sender_id": SUBMITTER,
                        "receiver_id": "DEMO-MCR",
                        # Numbers no real batch of this scratch database takes (they count up from 1).
                        "interchange_control_number": 900_000_000 + 1000 * run + number,
                        "group_control_number": number,
                        "transaction_set_control_number": "0001",
                        "claim_count": min(PER_BATCH, count - index),
                        "status": "sent",
                        "sent_at": now,
                        "updated_at": now,
                    }
                )
            template = claims[index % TEMPLATES]
            encounter = dict(encounters[template["encounter_id"]])
            encounter_id, claim_id = uuid.uuid4(), uuid.uuid4()
            encounter.update(id=encounter_id, external_id=f"BENCH-REMIT-{tag}-{index}", documentation=None)
            out["encounter"].append(encounter)
            for row in diagnoses.get(template["encounter_id"], []):
                out["diagnosis"].append({**row, "id": uuid.uuid4(), "encounter_id": encounter_id})
            for row in charge_lines.get(template["encounter_id"], []):
                out["charge_line"].append({**row, "id": uuid.uuid4(), "encounter_id": encounter_id})
            pcn = patient_control_number(claim_id)
            out["claim"].append(
                {
                    **template,
                    "id": claim_id,
                    "encounter_id": encounter_id,
                    "patient_control_number": pcn,
                    "state": "accepted",
                    "submission_batch_id": batch_id,
                    "state_changed_at": now,
                    "updated_at": now,
                }
            )
            for row in lines[template["id"]]:
                out["claim_line"].append({**row, "id": uuid.uuid4(), "claim_id": claim_id})
            for row in events[template["id"]]:
                out["claim_event"].append({**row, "id": uuid.uuid4(), "claim_id": claim_id})
            for from_state, to_state, cause in (
                ("ready", "submitted", "submission"),
                ("submitted", "accepted", "acknowledgment"),
            ):
                out["claim_event"].append(
                    {
                        **events[template["id"]][-1],
                        "id": uuid.uuid4(),
                        "claim_id": claim_id,
                        "created_at": now,
                        "from_state": from_state,
                        "to_state": to_state,
                        "cause": cause,
                        "actor": None,
                        "reason": None,
                    }
                )
            for posting in postings[template["id"]]:
                posting_id = uuid.uuid4()
                out["ledger_posting"].append({**posting, "id": posting_id, "claim_id": claim_id})
                for entry in entries[posting["id"]]:
                    out["ledger_entry"].append(
                        {**entry, "id": uuid.uuid4(), "posting_id": posting_id, "claim_id": claim_id}
                    )
            cloned.append(
                Cloned(
                    claim_id,
                    pcn,
                    members[template["encounter_id"]],
                    tuple(
                        Line(
                            r["line_number"],
                            r["procedure_code"],
                            tuple(r["modifiers"]),
                            r["units"],
                            r["charge_cents"],
                            r["service_date"],
                        )
                        for r in lines[template["id"]]
                    ),
                )
            )
        # Statistics first: the ledger's statement-level triggers (balance check, report rollups) join the
        # copied rows to the claim tables, and a plan made for the few template rows would scan per row.
        await conn.execute("ANALYZE")
        async with conn.transaction():
            for table, rows in out.items():
                await _copy(conn, table, rows)
        return cloned
    finally:
        await conn.close()


# -- the 835


@dataclass(frozen=True, slots=True)
class Expected:
    """What a run's file should do: its trace numbers, and the claims per state it moves them to."""

    traces: tuple[str, ...]
    states: dict[str, int]


def _paid_claim(index: int, claim: Cloned, tag: str) -> rm.Claim:
    """Medicare-like: allowed 64% of the charge (CO-45 the rest), PR-1 deductible on every sixth claim's
    first line, PR-2 20% coinsurance of what remains; one claim in 25 denied (CLP02 4, CO-50), one in 10
    paid as billed."""
    denied, full = index % 25 == 7, index % 10 == 3
    paid_lines = []
    for line in claim.lines:
        if denied:
            adjustments = (rm.Adjustment(group="CO", reason="50", amount=line.charge),)
            paid, allowed, remarks = 0, None, ("N115",)
        elif full:
            adjustments, paid, allowed, remarks = (), line.charge, line.charge, ()
        else:
            allowed = line.charge * 64 // 100
            deductible = min(allowed, 2500) if index % 6 == 0 and line.number == 1 else 0
            coinsurance = (allowed - deductible) * 20 // 100
            paid = allowed - deductible - coinsurance
            adjustments = tuple(
                rm.Adjustment(group=g, reason=r, amount=a)
                for g, r, a in (
                    ("CO", "45", line.charge - allowed),
                    ("PR", "1", deductible),
                    ("PR", "2", coinsurance),
                )
                if a
            )
            remarks = ()
        paid_lines.append(
            rm.ServiceLine(
                qualifier="HC",
                code=line.code,
                modifiers=line.modifiers,
                charge=line.charge,
                paid=paid,
                units=str(line.units),
                service_start=line.service_date,
                service_end=line.service_date,
                adjustments=adjustments,
                control_number=str(line.number),
                allowed=allowed,
                remarks=remarks,
            )
        )
    patient = sum(a.amount for item in paid_lines for a in item.adjustments if a.group == "PR")
    service = min(line.service_date for line in claim.lines)
    return rm.Claim(
        patient_control_number=claim.pcn,
        status="4" if denied else "1",
        charge=sum(item.charge for item in paid_lines),
        paid=sum(item.paid for item in paid_lines),
        filing_indicator="MB",
        payer_claim_control_number=f"{tag.upper()}{index:09d}",
        patient=rm.Person(
            last="DEMOPATIENT", first="BENCH", identifier_qualifier="MI", identifier=claim.member_id
        ),
        patient_responsibility=patient or None,
        facility_type="11",
        frequency="1",
        rendering=rm.Person(
            last="RENDERER", first="DEMO", identifier_qualifier="XX", identifier="1910000003"
        ),
        service_start=service,
        service_end=service,
        received=service + timedelta(days=2),
        lines=tuple(paid_lines),
    )


def _header(total: int, trace: str) -> rm.Header:
    return rm.Header(
        handling="I",
        total_paid=total,
        credit_debit="C",
        payment_method="ACH",
        funds=rm.Funds(
            format="CCP",
            sender=rm.Account(dfi_qualifier="01", dfi="999999992", account_qualifier="DA", account="123456"),
            originator_id="1999999999",
            receiver=rm.Account(dfi_qualifier="01", dfi="999988880", account_qualifier="DA", account="98765"),
        ),
        payment_date=date.today(),
        trace_number=trace,
        trace_originator="1999999999",
        production_date=date.today() - timedelta(days=1),
        payer=rm.Payer(
            name="DEMO MEDICARE",
            identifier_qualifier="XV",
            identifier="DEMOMCR01",
            payer_id="DEMO-MCR",
            address=rm.Address(line1="1 DEMO PAYER WAY", city="SPRINGFIELD", state="IL", postal_code="62701"),
            technical_contact=rm.Contact(function="BL", name="DEMO EDI SUPPORT", phone="5550100199"),
        ),
        payee=rm.Payee(
            name="SUNRISE FAMILY MEDICINE DEMO PC",
            npi=PAYEE_NPI,
            tin=PAYEE_TIN,
            address=rm.Address(
                line1="100 EXAMPLE WAY", city="SPRINGFIELD", state="IL", postal_code="627011234"
            ),
        ),
    )


def write_file(claims: Sequence[Cloned], sets: int, tag: str, control: int) -> tuple[Path, Expected]:
    """The run's 835: ``sets`` balanced payments over ``claims``, each with a recoupment and interest PLB."""
    paid = [_paid_claim(i, c, tag) for i, c in enumerate(claims)]
    size = -(-len(paid) // sets)
    remittances, traces = [], []
    for number, start in enumerate(range(0, len(paid), size), start=1):
        chunk = tuple(paid[start : start + size])
        plb = (
            rm.ProviderAdjustment(
                provider_id=PAYEE_NPI,
                fiscal_period_end=date(date.today().year, 12, 31),
                reason="WO",
                reference=chunk[0].payer_claim_control_number,
                amount=1234,
            ),
            rm.ProviderAdjustment(
                provider_id=PAYEE_NPI,
                fiscal_period_end=date(date.today().year, 12, 31),
                reason="L6",
                reference=chunk[-1].payer_claim_control_number,
                amount=-57,
            ),
        )
        trace = f"EFT{tag.upper()}{number:04d}"
        total = sum(c.paid for c in chunk) - sum(a.amount for a in plb)
        remittances.append(
            rm.Remittance(header=_header(total, trace), claims=chunk, provider_adjustments=plb)
        )
        traces.append(trace)
    text = remittance_interchange(
        remittances,
        sender=Party("ZZ", "DEMOMCR"),
        receiver=Party("ZZ", SUBMITTER),
        control_number=control,
        when=datetime.now(UTC).replace(tzinfo=None, microsecond=0),
    )
    FILES.mkdir(parents=True, exist_ok=True)
    path = FILES / f"remit-{len(claims)}-{tag}.835"
    path.write_text(text)
    states: dict[str, int] = {}
    for claim in paid:
        state = (
            "denied"
            if claim.status == "4" or claim.paid <= 0
            else ("paid" if claim.paid >= claim.charge else "partially_paid")
        )
        states[state] = states.get(state, 0) + 1
    return path, Expected(tuple(traces), states)


# -- timed: ours in a fresh process, pyx12 here


def _statement_clock() -> dict[str, list[float]]:
    """Per statement text (its first 90 characters): the number sent and the seconds from send to result,
    as this process sees them (SQLAlchemy's cursor executions, and the COMMIT with its deferred checks)."""
    from sqlalchemy import event
    from sqlalchemy.dialects.postgresql import asyncpg as adapter
    from sqlalchemy.engine import Engine

    spent: dict[str, list[float]] = {}

    def clocked(key: str, seconds: float) -> None:
        row = spent.setdefault(key, [0, 0.0])
        row[0] += 1
        row[1] += seconds

    @event.listens_for(Engine, "before_cursor_execute")
    def _sent(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["rcm_bench_sent"] = time.perf_counter()

    @event.listens_for(Engine, "after_cursor_execute")
    def _done(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        clocked(" ".join(statement.split())[:90], time.perf_counter() - conn.info.pop("rcm_bench_sent"))

    commit = adapter.AsyncAdapt_asyncpg_connection.commit

    def timed_commit(self: Any) -> None:
        started = time.perf_counter()
        commit(self)
        clocked("COMMIT", time.perf_counter() - started)

    adapter.AsyncAdapt_asyncpg_connection.commit = timed_commit  # type: ignore[method-assign]
    return spent


def _print_statements(spent: dict[str, list[float]], seconds: float) -> None:
    total = sum(s for _, s in spent.values())
    sent = sum(n for n, _ in spent.values())
    print(f"statements: {total:.2f} s of {seconds:.2f} s wall, {sent:.0f} sent", file=sys.stderr)
    for key, (count, took) in sorted(spent.items(), key=lambda kv: -kv[1][1])[:25]:
        print(f"  {took:7.3f} s {count:6.0f}x  {key}", file=sys.stderr)


def post_child(path: Path, profile: bool, statements: bool = False) -> None:
    """In a fresh process (RCM_DATABASE_URL etc. set by the parent): the CLI's import of ``path``, timed
    from the bytes in memory to the commit; prints seconds, CPU seconds, peak RSS and the summary."""
    import msgspec

    # Everything ``_import`` imports lazily, imported before the clock starts (as they are by `rcm` itself
    # before the command's body runs in a fresh CLI process: only the work is timed).
    import rcm.blobs.store
    import rcm.crypto.provider
    import rcm.identity.principal
    import rcm.kit.db
    import rcm.kit.secrets
    import rcm.ledger.intake  # noqa: F401
    from rcm.config import get_settings
    from rcm.kit.cli import role_database
    from rcm.ledger.cli import _import

    role_database(get_settings())
    data = path.read_bytes()
    baseline = peak_kib()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    spent = _statement_clock() if statements else None
    database, cpu, started = database_cpu_seconds(), time.process_time(), time.perf_counter()
    summary = asyncio.run(_import(data))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    database = database_cpu_seconds() - database
    if spent is not None:
        _print_statements(spent, seconds)
    if profiler is not None:
        import pstats

        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
    result = {
        "seconds": seconds,
        "cpu": cpu,
        "database_cpu": database,
        "baseline_kib": baseline,
        "peak_kib": peak_kib(),
        "summary": msgspec.to_builtins(summary),
    }
    print(json.dumps(result))


def post(path: Path, admin: str, data_dir: Path, profile: bool, statements: bool = False) -> dict[str, Any]:
    env = {
        **os.environ,
        "RCM_ENV": "dev",
        "RCM_DATABASE_URL": admin,
        "RCM_DATA_DIR": str(data_dir),
        "RCM_LOG_LEVEL": "WARNING",
        **DEMO_SECRETS,
    }
    command = [sys.executable, __file__, "--post-child", str(path), *(["--profile"] if profile else [])]
    command += ["--statements"] if statements else []
    done = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, text=True)  # noqa: S603
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def verify(
    admin: str, tenant_id: uuid.UUID, claims: Sequence[Cloned], expected: Expected, summary: dict[str, Any]
) -> None:
    """The run did what the file says, counted from the database (and the import's own summary)."""
    count = len(claims)
    problems = []
    if summary["posted"] != len(expected.traces) or summary["transaction_sets"] != len(expected.traces):
        problems.append(f"summary: {summary['posted']} of {summary['transaction_sets']} sets posted")
    if (summary["claims_matched"], summary["claims_unmatched"]) != (count, 0):
        problems.append(f"summary: {summary['claims_matched']} matched, {summary['claims_unmatched']} not")
    if summary["held"] or summary["duplicates"] or summary["unassigned"]:
        problems.append("summary: sets held, duplicate or unassigned")
    conn = await asyncpg.connect(admin)
    try:
        ids = [c.claim_id for c in claims]
        states = dict(
            await conn.fetch(
                "SELECT state, count(*) FROM rcm.claim WHERE tenant_id = $1 AND id = ANY($2) GROUP BY state",
                tenant_id,
                ids,
            )
        )
        if states != expected.states:
            problems.append(f"claim states {states}, expected {expected.states}")
        posted = await conn.fetchval(
            "SELECT count(*) FROM rcm.remittance WHERE tenant_id = $1 AND trace_number = ANY($2)"
            " AND state = 'posted'",
            tenant_id,
            list(expected.traces),
        )
        if posted != len(expected.traces):
            problems.append(f"{posted} remittances posted, expected {len(expected.traces)}")
        matched, unmatched = await conn.fetchrow(
            "SELECT count(DISTINCT p.claim_id), count(*) FILTER (WHERE p.claim_id IS NULL)"
            " FROM rcm.ledger_posting p JOIN rcm.remittance r ON r.tenant_id = p.tenant_id"
            " AND r.id = p.remittance_id WHERE r.tenant_id = $1 AND r.trace_number = ANY($2)"
            " AND p.source = 'remittance_claim'",
            tenant_id,
            list(expected.traces),
        )
        if (matched, unmatched) != (count, 0):
            problems.append(f"remittance postings: {matched} claims, {unmatched} unapplied")
        insurance = await conn.fetchval(
            "SELECT coalesce(sum(amount_cents), 0) FROM rcm.ledger_entry WHERE tenant_id = $1"
            " AND claim_id = ANY($2) AND account = 'insurance_receivable'",
            tenant_id,
            ids,
        )
        if insurance != 0:
            problems.append(f"the claims' insurance receivable is {insurance} cents, not 0")
    finally:
        await conn.close()
    if problems:
        raise SystemExit("the run did not post what the file says: " + "; ".join(problems))


def _line(label: str, rates: list[float], extra: str = "") -> str:
    median = statistics.median(rates)
    return f"  {label:46s} {median:>9,.0f} claims/s  [{min(rates):,.0f} - {max(rates):,.0f}]{extra}"


def readers(path: Path, claims: int) -> tuple[float, float]:
    """Claims per second of pyx12's segment reader (the reference) and of our reader alone (the first step of
    ours, every set read and checked, no database), each from the file in memory: ours is read before its
    clock starts, too."""
    text = io.StringIO(path.read_text())
    started = time.perf_counter()
    if count_pyx12(text) != claims:
        raise SystemExit("pyx12 counted another number of CLP segments")
    pyx12_rate = claims / (time.perf_counter() - started)
    data = path.read_bytes()
    started = time.perf_counter()
    if sum(len(found.read.claims) for found in read_headers(data)) != claims:
        raise SystemExit("our reader read another number of claims")
    return pyx12_rate, claims / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=10_000, help="claims in each run's 835")
    parser.add_argument("--sets", type=int, default=4, help="transaction sets (payments) in the file")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (medians are printed)")
    parser.add_argument("--profile", action="store_true", help="cProfile one more run's posting (stderr)")
    parser.add_argument(
        "--statements", action="store_true", help="time each statement of one more run's posting (stderr)"
    )
    parser.add_argument("--post-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.post_child is not None:
        post_child(args.post_child, args.profile, args.statements)
        return
    asyncio.run(bench(args))


async def bench(args: argparse.Namespace) -> None:
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)
    os.environ["RCM_ENV"] = "dev"
    db = await scratch_database(DB_NAME)
    settings = Settings(env="dev", database_url=db.admin, data_dir=db.data_dir)
    tenant_id = await db.tenant_id(API_TENANT)
    started = time.perf_counter()
    await template_claims(settings, TenantId(tenant_id))
    # An instrumented run (--profile, --statements) is one more run, after the timed ones: its figures are
    # printed, never counted in the medians.
    instrumented = args.profile or args.statements
    runs = []
    for run in range(args.runs + instrumented):
        tag = uuid.uuid4().hex[:8]
        claims = await clone_claims(db.admin, tenant_id, args.claims, tag, run)
        path, expected = write_file(claims, args.sets, tag, control=run + 1)
        runs.append((claims, path, expected))
    size = runs[0][1].stat().st_size / 1e6
    print(
        f"set-up: {TEMPLATES} claims through the service code, {len(runs)} x {args.claims:,} cloned,"
        f" {len(runs)} files written ({size:.1f} MB each) in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    count_pyx12(io.StringIO(runs[0][1].read_text()))  # warm-up: imports
    figures: dict[str, list[float]] = {}
    for run, (claims, path, expected) in enumerate(runs):
        await db.vacuum()
        counted = run < args.runs
        result = post(
            path, db.admin, db.data_dir, args.profile and not counted, args.statements and not counted
        )
        await verify(db.admin, tenant_id, claims, expected, result["summary"])
        pyx12_rate, read_rate = readers(path, len(claims))
        rate = len(claims) / result["seconds"]
        label = f"run {run + 1}" if counted else "instrumented run (not counted)"
        print(
            f"{label}: ours {rate:,.0f} claims/s ({result['seconds']:.2f} s), pyx12 {pyx12_rate:,.0f}"
            f" claims/s, our reader alone {read_rate:,.0f} claims/s; states {expected.states}",
            flush=True,
        )
        if counted:
            for name, value in (
                ("ours", rate),
                ("pyx12", pyx12_rate),
                ("reader", read_rate),
                ("cpu", result["cpu"] / result["seconds"]),
                ("database", result["database_cpu"] / result["seconds"]),
                ("peak", result["peak_kib"] / 1024),
                ("baseline", result["baseline_kib"] / 1024),
            ):
                figures.setdefault(name, []).append(value)
    print(
        f"\n835 posting: {args.claims:,} claims ({size:.1f} MB, {args.sets} transaction sets) per run,"
        f" {args.runs} interleaved runs, wall time, medians [range]; load average"
        f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    summarise(figures)


def summarise(figures: dict[str, list[float]]) -> None:
    """The medians of the counted runs: ours, the reference, our reader alone, and where the time and the CPU
    go in units of pyx12's time against what the target allows."""
    median = {name: statistics.median(values) for name, values in figures.items()}
    ratio = median["ours"] / median["pyx12"]
    print(
        _line(
            "rcm remit import (parse, match, post, commit)",
            figures["ours"],
            f"   process CPU {median['cpu']:.0%} of wall, database CPU {median['database']:.0%}",
        )
    )
    print(_line("pyx12 segment reader (X12Reader, CLP count)", figures["pyx12"]))
    print(_line("our reader alone (read_headers, no database)", figures["reader"]))
    print(
        f"  ratio ours / pyx12: {ratio:.2f}x (target >= {TARGET}x: {'met' if ratio >= TARGET else 'NOT met'})"
    )
    reading = median["pyx12"] / median["reader"]
    print(
        f"  in units of pyx12's time: ours {1 / ratio:.1f} (our reader {reading:.2f}; matching, posting and"
        f" committing {1 / ratio - reading:.1f}); the target allows {1 / TARGET:.1f}"
    )
    process, server, cores = median["cpu"] / ratio, median["database"] / ratio, os.cpu_count() or 1
    print(
        f"  CPU in units of pyx12's (one core for its time): ours {process + server:.1f} (process {process:.1f},"
        f" database {server:.1f}); in the time the target allows, this machine's {cores} cores give"
        f" {cores / TARGET:.1f}"
    )
    print(
        f"  posting process peak RSS: {median['peak']:.0f} MiB (max {max(figures['peak']):.0f});"
        f" after imports {median['baseline']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
