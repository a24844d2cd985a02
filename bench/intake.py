"""Encounters per second through the running API over loopback, beside plain asyncpg doing the same rows.

    make bench-intake          (or: .venv/bin/python bench/intake.py [--seconds 6] [--runs 3])

Three references, all as the app role under RLS, one transaction per encounter, on as many connections as
the API has in flight:
- "rows": the rows the API writes for one encounter (idempotency record, patient, coverage, encounter,
  diagnoses, charge lines, event, work item and its event, three audit events), nothing else, a statement
  each (the reference the issue's target was set against);
- "rows+lookups": the same plus the lookups a correct intake must make (tenant by slug, external id,
  patient by MRN index, coverage by member index, provider by NPI, idempotency reserve then store);
- "rows, one statement": the same rows as "rows" in ONE statement of data-modifying CTEs, the fewest round
  trips plain asyncpg can take: the true ceiling (the API also writes in one statement, after one lookup
  statement, so this is the fairest comparison of the per-row work).
Not in any reference: the API's webhook fan-out (an INSERT ... SELECT over the practice's subscriptions,
none here). The ratio to "rows" is the cost of all our layers against a statement-per-row writer; to
"rows, one statement", against the leanest writer. One API process and then two (the multi-worker figure)
are measured, and each reference in one process (the load generator's) and then in two processes of their
own started together, half the connections each: each API figure is set beside the references run in as
many processes. Each phase runs for the same wall time, interleaved with the others, VACUUM ANALYZE between
phases; figures are medians of the runs with their ranges. Uses RCM_DATABASE_URL when set, otherwise the
embedded PostgreSQL under .rcm/bench-pg; drops and creates the database rcm_bench_intake. All traffic stays
on 127.0.0.1.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import asyncio
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
from benchkit import (
    API_TENANT,
    ApiServers,
    Database,
    Series,
    child_arguments,
    child_phase,
    drive_http,
    drive_pool,
    drive_processes,
    raw_request,
    reference_pool,
    report,
    scratch_database,
    token,
)

CEILING_TENANT = "lakeside-pediatrics"
PORT = 8765
KINDS = ("rows", "lookups", "single")  # the references, in the order printed
PLACEHOLDER = b"@@@@@@@@@@@@"  # replaced per request by a unique tag (cheap for the generator)


def encounter_template() -> bytes:
    tag = PLACEHOLDER.decode()
    return json.dumps(
        {
            "external_id": f"BENCH-{tag}",
            "service_date": (date.today() - timedelta(days=2)).isoformat(),
            "place_of_service": "11",
            "patient": {
                "mrn": f"BMRN-{tag}",
                "given_name": "Bench",
                "family_name": f"Patient{tag}",
                "birth_date": "1970-05-17",
                "sex": "male",
                "phone": "+1 555 0100",
            },
            "coverage": {"payer_id": "DEMO-MCR", "member_id": f"BM{tag}"},
            "rendering_provider": {"npi": "1234567893", "name": "Dr Bench Fake"},
            "documentation": "BENCH NOTE: synthetic office visit. " * 8,
            "diagnoses": [{"code": "E11.9"}, {"code": "I10"}],
            "charges": [
                {"procedure_code": "99213", "charge_cents": 12500, "diagnosis_pointers": [1, 2]},
                {"procedure_code": "G2211", "charge_cents": 1650, "diagnosis_pointers": [1]},
            ],
        }
    ).encode()


def intake_requests(bearer: str) -> Iterator[bytes]:
    """Pre-encoded POSTs, each with a fresh external id, MRN, member id and Idempotency-Key."""
    path = f"/api/v1/tenants/{API_TENANT}/encounters"
    template = encounter_template()
    run = secrets.token_hex(3).upper()
    for i in range(10**9):
        tag = f"{run}{i:06d}".encode()[: len(PLACEHOLDER)].ljust(len(PLACEHOLDER), b"0")
        body = template.replace(PLACEHOLDER, tag)
        headers = {
            "Authorization": f"Bearer {bearer}",
            "Content-Type": "application/json",
            "Idempotency-Key": tag.decode(),
        }
        yield raw_request("POST", path, headers, body)


class Ceiling:
    """The same rows as plain asyncpg as the app role; ``lookups`` adds the reads a correct intake makes."""

    def __init__(self, tenant_id: uuid.UUID, provider_id: uuid.UUID, *, lookups: bool) -> None:
        self.tenant_id, self.provider_id, self.lookups = tenant_id, provider_id, lookups
        self.run = secrets.token_hex(3)

    async def one(self, conn: asyncpg.Connection, i: int) -> None:
        tenant_id, blob = self.tenant_id, secrets.token_bytes
        patient, coverage, enc, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        external = f"C-{self.run}-{i}"
        await conn.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(tenant_id))
        if self.lookups:
            await conn.fetchrow("SELECT id, status, manifest FROM rcm.tenant WHERE slug = $1", CEILING_TENANT)
            await conn.fetchval(
                "INSERT INTO rcm.idempotency_record (tenant_id, id, principal, key, route, request_hash,"
                " status_code, response_body) VALUES ($1, $2, 'client:x', $3, 'POST /encounters', $4, 0, '')"
                " ON CONFLICT (tenant_id, principal, key) DO NOTHING RETURNING id",
                tenant_id,
                record,
                external,
                blob(32),
            )
            await conn.fetchrow(
                "SELECT id FROM rcm.encounter WHERE tenant_id = $1 AND external_id = $2", tenant_id, external
            )
            await conn.fetchrow(
                "SELECT * FROM rcm.patient WHERE tenant_id = $1 AND mrn_bidx = ANY($2)", tenant_id, [blob(32)]
            )
        else:
            await conn.execute(
                "INSERT INTO rcm.idempotency_record (tenant_id, id, principal, key, route, request_hash,"
                " status_code, response_body) VALUES ($1, $2, 'client:x', $3, 'POST /encounters', $4, 201, $5)",
                tenant_id,
                record,
                external,
                blob(32),
                blob(1400),
            )
        await conn.execute(
            "INSERT INTO rcm.patient (tenant_id, id, mrn, given_name, family_name, birth_date, phone, sex,"
            " mrn_bidx, name_dob_bidx) VALUES ($1, $2, $3, $4, $5, $6, $7, 'male', $8, $9)",
            tenant_id,
            patient,
            *patient_values(),
        )
        if self.lookups:
            await conn.fetchrow(
                "SELECT * FROM rcm.coverage WHERE tenant_id = $1 AND patient_id = $2 AND payer_id = 'DEMO-MCR'"
                " AND member_id_bidx = ANY($3)",
                tenant_id,
                patient,
                [blob(32)],
            )
        await conn.execute(
            "INSERT INTO rcm.coverage (tenant_id, id, patient_id, payer_id, member_id, member_id_bidx,"
            " relationship, priority) VALUES ($1, $2, $3, 'DEMO-MCR', $4, $5, 'self', 'primary')",
            tenant_id,
            coverage,
            patient,
            blob(45),
            blob(32),
        )
        if self.lookups:
            await conn.fetchrow(
                "SELECT * FROM rcm.provider WHERE tenant_id = $1 AND npi = '1999999992'", tenant_id
            )
        await conn.execute(
            "INSERT INTO rcm.encounter (tenant_id, id, external_id, patient_id, coverage_id,"
            " rendering_provider_id, billing_provider_id, service_date, place_of_service, documentation,"
            " status, total_charge_cents, source) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, '11', $8,"
            " 'needs_coding', 14150, 'json')",
            tenant_id,
            enc,
            external,
            patient,
            coverage,
            self.provider_id,
            date.today(),
            blob(320),
        )
        await conn.executemany(
            "INSERT INTO rcm.diagnosis (tenant_id, id, encounter_id, sequence, code) VALUES ($1, $2, $3, $4, $5)",
            [(tenant_id, uuid.uuid4(), enc, 1, "E119"), (tenant_id, uuid.uuid4(), enc, 2, "I10")],
        )
        await conn.executemany(
            "INSERT INTO rcm.charge_line (tenant_id, id, encounter_id, line_number, procedure_code, modifiers,"
            " units, charge_cents, diagnosis_pointers) VALUES ($1, $2, $3, $4, $5, '{}', 1, $6, $7)",
            [
                (tenant_id, uuid.uuid4(), enc, 1, "99213", 12500, [1, 2]),
                (tenant_id, uuid.uuid4(), enc, 2, "G2211", 1650, [1]),
            ],
        )
        await conn.execute(
            "INSERT INTO rcm.encounter_event (tenant_id, id, encounter_id, status) VALUES ($1, $2, $3, 'needs_coding')",
            tenant_id,
            uuid.uuid4(),
            enc,
        )
        await conn.execute(
            "WITH item AS (INSERT INTO rcm.work_item (tenant_id, id, kind, subject_type, subject_id, status,"
            " priority, due_at) VALUES ($1, $2, 'coding', 'encounter', $3, 'open', 5, $4)"
            " RETURNING tenant_id, id, created_at, status)"
            " INSERT INTO rcm.work_item_event (tenant_id, id, created_at, work_item_id, event, status)"
            " SELECT tenant_id, gen_random_uuid(), created_at, id, 'created', status FROM item",
            tenant_id,
            uuid.uuid4(),
            enc,
            now + timedelta(hours=48),
        )
        if self.lookups:
            await conn.execute(
                "UPDATE rcm.idempotency_record SET status_code = 201, response_body = $3, resource_type ="
                " 'encounter', resource_ids = $4, patient_ids = $5 WHERE tenant_id = $1 AND id = $2",
                tenant_id,
                record,
                blob(1400),
                [enc],
                [patient],
            )
        # The audit events as the app writes them: appended in the request's transaction, no chain lock
        # (the chainer seals them afterwards, outside the request).
        await conn.executemany(
            "INSERT INTO rcm.audit_event (tenant_id, occurred_at, id, event_type, action, outcome,"
            " actor_kind, actor_subject, actor_roles, resource_type, resource_ids, patient_ids, request_id,"
            " trace_id, detail) VALUES ($1, $2, $3, $4, 'C', '0', 'client', 'x',"
            " '{practice_client}', 'encounter', $5, $6, 'r', '', '{}')",
            [
                (tenant_id, now, uuid.uuid4(), kind, [resource], [patient])
                for kind, resource in audited(patient, coverage, enc)
            ],
        )

    async def in_one_statement(self, conn: asyncpg.Connection, i: int) -> None:
        """The same rows as ``one`` without lookups, every INSERT in ONE statement (data-modifying CTEs):
        the fewest round trips plain asyncpg can take (BEGIN, the tenant binding, the statement, COMMIT)."""
        tenant_id, blob = self.tenant_id, secrets.token_bytes
        patient, coverage, enc = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        await conn.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(tenant_id))
        events = list(audited(patient, coverage, enc))
        await conn.execute(
            ONE_STATEMENT,
            tenant_id,
            uuid.uuid4(),
            f"C1-{self.run}-{i}",
            blob(32),
            blob(1400),
            patient,
            *patient_values(),
            coverage,
            blob(45),
            blob(32),
            enc,
            self.provider_id,
            date.today(),
            blob(320),
            now + timedelta(hours=48),
            now,
            [kind for kind, _ in events],
            [str(resource) for _, resource in events],
        )


def patient_values() -> list[bytes]:
    """A patient's ciphertexts and blind indexes as sized as the API's: MRN, given and family name, birth
    date, phone, MRN index, name-and-birth-date index."""
    return [secrets.token_bytes(size) for size in (45, 35, 45, 40, 40, 32, 32)]


def audited(patient: uuid.UUID, coverage: uuid.UUID, encounter: uuid.UUID) -> Iterator[tuple[str, uuid.UUID]]:
    """The audit events of one intake creating its patient and coverage, as the API records them."""
    yield from (("coverage.create", coverage), ("patient.create", patient), ("encounter.create", encounter))


# ``Ceiling.in_one_statement``: $1 tenant, $2-$5 idempotency record (id, key, request hash, response),
# $6-$13 patient, $14-$16 coverage, $17-$21 encounter (id, provider, date, documentation, item due), $22 now,
# $23/$24 the audit events' kinds and resource ids.
ONE_STATEMENT = (
    "WITH idem AS (INSERT INTO rcm.idempotency_record (tenant_id, id, principal, key, route, request_hash,"
    " status_code, response_body) VALUES ($1, $2, 'client:x', $3, 'POST /encounters', $4, 201, $5)),"
    " pat AS (INSERT INTO rcm.patient (tenant_id, id, mrn, given_name, family_name, birth_date, phone, sex,"
    " mrn_bidx, name_dob_bidx) VALUES ($1, $6, $7, $8, $9, $10, $11, 'male', $12, $13) RETURNING id),"
    " cov AS (INSERT INTO rcm.coverage (tenant_id, id, patient_id, payer_id, member_id, member_id_bidx,"
    " relationship, priority) SELECT $1, $14, id, 'DEMO-MCR', $15, $16, 'self', 'primary' FROM pat"
    " RETURNING id, patient_id),"
    " enc AS (INSERT INTO rcm.encounter (tenant_id, id, external_id, patient_id, coverage_id,"
    " rendering_provider_id, billing_provider_id, service_date, place_of_service, documentation, status,"
    " total_charge_cents, source) SELECT $1, $17, $3, patient_id, id, $18, $18, $19, '11', $20,"
    " 'needs_coding', 14150, 'json' FROM cov RETURNING id),"
    " dx AS (INSERT INTO rcm.diagnosis (tenant_id, id, encounter_id, sequence, code)"
    " SELECT $1, gen_random_uuid(), enc.id, d.seq, d.code FROM enc,"
    " (VALUES (1, 'E119'), (2, 'I10')) AS d(seq, code)),"
    " lines AS (INSERT INTO rcm.charge_line (tenant_id, id, encounter_id, line_number, procedure_code,"
    " modifiers, units, charge_cents, diagnosis_pointers)"
    " SELECT $1, gen_random_uuid(), enc.id, l.n, l.code, '{}', 1, l.cents, l.pointers FROM enc,"
    " (VALUES (1, '99213', 12500, '{1,2}'::smallint[]), (2, 'G2211', 1650, '{1}'::smallint[]))"
    " AS l(n, code, cents, pointers)),"
    " ev AS (INSERT INTO rcm.encounter_event (tenant_id, id, encounter_id, status)"
    " SELECT $1, gen_random_uuid(), id, 'needs_coding' FROM enc),"
    " item AS (INSERT INTO rcm.work_item (tenant_id, id, kind, subject_type, subject_id, status, priority,"
    " due_at) SELECT $1, gen_random_uuid(), 'coding', 'encounter', id, 'open', 5, $21 FROM enc"
    " RETURNING tenant_id, id, created_at, status),"
    " item_ev AS (INSERT INTO rcm.work_item_event (tenant_id, id, created_at, work_item_id, event, status)"
    " SELECT tenant_id, gen_random_uuid(), created_at, id, 'created', status FROM item)"
    " INSERT INTO rcm.audit_event (tenant_id, occurred_at, id, event_type, action, outcome, actor_kind,"
    " actor_subject, actor_roles, resource_type, resource_ids, patient_ids, request_id, trace_id, detail)"
    " SELECT $1, $22, gen_random_uuid(), a.kind, 'C', '0', 'client', 'x', '{practice_client}', 'encounter',"
    " ARRAY[a.resource::uuid], ARRAY[$6::uuid], 'r', '', '{}' FROM unnest($23::text[], $24::text[])"
    " AS a(kind, resource)"
)


async def ceiling_provider(db: Database, tenant_id: uuid.UUID) -> uuid.UUID:
    provider_id = uuid.uuid4()
    conn = await asyncpg.connect(db.app)
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(tenant_id))
            await conn.execute(
                "INSERT INTO rcm.provider (tenant_id, id, npi, name, kind)"
                " VALUES ($1, $2, '1999999992', 'x', 'individual')",
                tenant_id,
                provider_id,
            )
    finally:
        await conn.close()
    return provider_id


def reference_work(
    kind: str, tenant_id: uuid.UUID, provider_id: uuid.UUID
) -> Callable[[asyncpg.Connection, int], Awaitable[None]]:
    """What one encounter of the reference ``kind`` ("rows", "lookups" or "single") does."""
    ceiling = Ceiling(tenant_id, provider_id, lookups=kind == "lookups")
    return ceiling.in_one_statement if kind == "single" else ceiling.one


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="wall time of each phase")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (medians are printed)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests (and connections) in flight")
    child_arguments(parser, KINDS, ("tenant", "provider"))
    args = parser.parse_args()
    concurrency = args.concurrency
    if args.reference_child:
        kind, tenant, provider = args.reference_child, args.tenant, args.provider
        db = Database.from_environment()
        await child_phase(
            db,
            lambda: reference_work(kind, tenant, provider),
            concurrency=concurrency,
            start_at=args.start_at,
            seconds=args.seconds,
        )
        return

    db = await scratch_database("rcm_bench_intake")
    tenant_id = await db.tenant_id(CEILING_TENANT)
    provider_id = await ceiling_provider(db, tenant_id)
    one = ApiServers(db, [PORT], pool_size=concurrency).start()
    two = ApiServers(db, [PORT + 1, PORT + 2], pool_size=concurrency // 2).start()
    api1, api2 = Series("API, 1 process"), Series("API, 2 processes")
    references = {
        (kind, processes): Series(f"asyncpg {label}, {processes} process{'es' if processes > 1 else ''}")
        for processes in (1, 2)
        for kind, label in zip(KINDS, ("rows", "rows+lookups", "rows, one statement"), strict=True)
    }
    pool = await reference_pool(db, concurrency)
    try:
        requests = intake_requests(token(PORT, db.clients[API_TENANT]))
        for servers in (one, two):  # warm-up: pools, key caches, prepared statements
            await drive_http(servers, requests, concurrency=concurrency, seconds=1.5, expect=201)
        warm = Ceiling(tenant_id, provider_id, lookups=True)
        for work in (warm.one, warm.in_one_statement):
            await drive_pool(pool, work, concurrency=concurrency, seconds=1)
        for _ in range(args.runs):
            for series, servers in ((api1, one), (api2, two)):
                await db.vacuum()
                series.phases.append(
                    await drive_http(
                        servers, requests, concurrency=concurrency, seconds=args.seconds, expect=201
                    )
                )
            for kind in KINDS:
                await db.vacuum()
                work = reference_work(kind, tenant_id, provider_id)
                references[kind, 1].phases.append(
                    await drive_pool(pool, work, concurrency=concurrency, seconds=args.seconds)
                )
            for kind in KINDS:
                await db.vacuum()
                child = [
                    "--reference-child",
                    kind,
                    "--tenant",
                    str(tenant_id),
                    "--provider",
                    str(provider_id),
                ]
                references[kind, 2].phases.append(
                    await drive_processes(
                        db, Path(__file__), child, processes=2, concurrency=concurrency, seconds=args.seconds
                    )
                )
    finally:
        await pool.close()
        one.stop()
        two.stop()
    report(
        f"intake: POST /encounters (inline patient+coverage+provider), {concurrency} in flight,"
        f" {args.runs} interleaved runs of {args.seconds:.0f} s, medians [range]",
        "enc/s",
        [api1, api2],
        list(references.values()),
        pairs=[
            (api, references[kind, processes]) for api, processes in ((api1, 1), (api2, 2)) for kind in KINDS
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
