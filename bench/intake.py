"""Encounters per second through the running API over loopback, beside plain asyncpg doing the same rows.

    make bench-intake          (or: .venv/bin/python bench/intake.py [--seconds 6] [--runs 3])

Two references, both as the app role under RLS, one transaction per encounter, on as many connections as
the API has in flight:
- "rows": the rows the API writes for one encounter (idempotency record, patient, coverage, encounter,
  diagnoses, charge lines, event, work item, audit events), nothing else;
- "rows+lookups": the same plus the lookups a correct intake must make (tenant by slug, external id,
  patient by MRN index, coverage by member index, provider by NPI, idempotency reserve then store).
The ratio to "rows" is the cost of all our layers; the ratio to "rows+lookups" is the cost beyond the
statements the work needs. One API process and then two (the multi-worker figure) are measured, each phase
for the same wall time, interleaved with the references, VACUUM ANALYZE between phases; figures are medians
of the runs with their ranges. Uses RCM_DATABASE_URL when set, otherwise the embedded PostgreSQL under
.rcm/bench-pg; drops and creates the database rcm_bench_intake. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
from benchkit import (
    API_TENANT,
    ApiServers,
    Database,
    Series,
    drive_http,
    drive_pool,
    raw_request,
    reference_pool,
    report,
    scratch_database,
    token,
)

CEILING_TENANT = "lakeside-pediatrics"
PORT = 8765
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
            blob(45),
            blob(35),
            blob(45),
            blob(40),
            blob(40),
            blob(32),
            blob(32),
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
                (tenant_id, now, uuid.uuid4(), kind, [enc], [patient])
                for kind in ("patient.create", "encounter.create")
            ],
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="wall time of each phase")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (medians are printed)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests (and connections) in flight")
    args = parser.parse_args()
    concurrency = args.concurrency

    db = await scratch_database("rcm_bench_intake")
    tenant_id = await db.tenant_id(CEILING_TENANT)
    provider_id = await ceiling_provider(db, tenant_id)
    one = ApiServers(db, [PORT], pool_size=concurrency).start()
    two = ApiServers(db, [PORT + 1, PORT + 2], pool_size=concurrency // 2).start()
    api1, api2 = Series("API, 1 process"), Series("API, 2 processes")
    rows, lookups = Series("asyncpg rows"), Series("asyncpg rows+lookups")
    pool = await reference_pool(db, concurrency)
    try:
        requests = intake_requests(token(PORT, db.clients[API_TENANT]))
        for servers in (one, two):  # warm-up: pools, key caches, prepared statements
            await drive_http(servers, requests, concurrency=concurrency, seconds=1.5, expect=201)
        await drive_pool(
            pool, Ceiling(tenant_id, provider_id, lookups=True).one, concurrency=concurrency, seconds=1
        )
        for _ in range(args.runs):
            for series, servers in ((api1, one), (api2, two)):
                await db.vacuum()
                series.phases.append(
                    await drive_http(
                        servers, requests, concurrency=concurrency, seconds=args.seconds, expect=201
                    )
                )
            for series, with_lookups in ((rows, False), (lookups, True)):
                await db.vacuum()
                ceiling = Ceiling(tenant_id, provider_id, lookups=with_lookups)
                series.phases.append(
                    await drive_pool(pool, ceiling.one, concurrency=concurrency, seconds=args.seconds)
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
        [rows, lookups],
    )


if __name__ == "__main__":
    asyncio.run(main())
