"""A PHI list read through the running API (100 patients, decrypted), beside the same SELECT in asyncpg.

    make bench-read            (or: .venv/bin/python bench/read.py [--seconds 5] [--runs 3])

``GET /api/v1/tenants/{slug}/patients?limit=100`` returns 100 patients with their PHI decrypted and writes
one audit event. The references, as the app role under RLS, one transaction each, on as many connections
as the API has in flight:
- "SELECT": the tenant context and the same SELECT of 101 rows (the page plus one, as the API reads);
- "SELECT+decrypt+audit": the same, with every PHI field decrypted in-process with the tenant's real keys
  and the read's audit event inserted: the least work a correct, audited read can do.
One API process and then two are measured, and each reference in one process (the load generator's) and
then in two processes of their own started together, half the connections each: each API figure is set
beside the references run in as many processes. Phases are interleaved and time-boxed, VACUUM ANALYZE
between them; figures are medians of the runs with ranges. Uses RCM_DATABASE_URL when set, otherwise the
embedded PostgreSQL under .rcm/bench-pg; drops and creates rcm_bench_read. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import asyncio
import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from benchkit import (
    API_TENANT,
    ApiServers,
    Connection,
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

from rcm.config import Settings
from rcm.crypto.keyring import KeyStore, TenantKeyring
from rcm.crypto.provider import key_provider
from rcm.kit.db import create_engine, session_factory, tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.patients.models import Patient

PORT = 8775
PAGE = 100
SELECT = (
    "SELECT tenant_id, id, mrn, given_name, family_name, birth_date, sex, address, phone, created_at"
    " FROM rcm.patient WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2"
)


async def seed_patients(port: int, bearer: str) -> None:
    """PAGE patients through the API itself, so their PHI is encrypted exactly as the app does it."""
    connection = await Connection.open(port)
    try:
        for i in range(PAGE):
            body = json.dumps(
                {
                    "mrn": f"RMRN-{i:05d}",
                    "given_name": "Read",
                    "family_name": f"Bench{i:05d}",
                    "birth_date": "1980-02-29",
                    "sex": "female",
                    "phone": "+1 555 0101",
                    "address": {
                        "line1": "1 Main St",
                        "city": "Springfield",
                        "state": "IL",
                        "postal_code": "62701",
                    },
                }
            ).encode()
            headers = {
                "Authorization": f"Bearer {bearer}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"seed-{i}",
            }
            path = f"/api/v1/tenants/{API_TENANT}/patients"
            status, answer = await connection.send(raw_request("POST", path, headers, body))
            if status != 201:
                raise SystemExit(f"seeding answered {status}: {answer[:300]!r}")
    finally:
        connection.close()


def list_requests(bearer: str) -> Iterator[bytes]:
    request = raw_request(
        "GET", f"/api/v1/tenants/{API_TENANT}/patients?limit={PAGE}", {"Authorization": f"Bearer {bearer}"}
    )
    return itertools.repeat(request)


async def tenant_keyring(db: Database, tenant_id: TenantId) -> TenantKeyring:
    settings = Settings(env="dev", database_url=db.admin, data_dir=db.data_dir)
    engine = create_engine(db.app, pool_size=1, application_name="rcm-bench")
    try:
        async with tenant_transaction(session_factory(engine), TenantContext.single(tenant_id)) as session:
            return await KeyStore(key_provider(settings)).keyring(session, tenant_id)
    finally:
        await engine.dispose()


class Reference:
    def __init__(self, tenant_id: uuid.UUID, keyring: TenantKeyring | None) -> None:
        self.tenant_id, self.keyring = tenant_id, keyring

    async def one(self, conn: asyncpg.Connection, _i: int) -> None:
        await conn.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(self.tenant_id))
        rows = await conn.fetch(SELECT, self.tenant_id, PAGE + 1)
        if self.keyring is None:
            return
        # The same page-wide opener the API uses (keys and associated data set up once per page): the
        # least decryption work, so the reference is not slowed by per-field look-ups the API does not do.
        opener = self.keyring.opener("patient", Patient.__phi_columns__)
        for row in rows[:PAGE]:
            opener.open(row["id"], [row[column] for column in Patient.__phi_columns__])
        ids = [row["id"] for row in rows[:PAGE]]
        await conn.execute(
            "INSERT INTO rcm.audit_event (tenant_id, occurred_at, id, event_type, action, outcome,"
            " actor_kind, actor_subject, actor_roles, resource_type, resource_ids, patient_ids, request_id,"
            " trace_id, detail) VALUES ($1, $2, $3, 'patient.search', 'R', '0', 'client', 'x',"
            " '{practice_client}', 'patient', $4, $4, 'r', '', '{}')",
            self.tenant_id,
            datetime.now(UTC),
            uuid.uuid4(),
            ids,
        )


async def reference_process(
    kind: str, tenant_id: uuid.UUID, *, concurrency: int, start_at: float, seconds: float
) -> None:
    """One of the processes of a reference run in processes of its own (``drive_processes``); the tenant's
    keyring is fetched here for ``full``."""
    db = Database.from_environment()
    keyring = await tenant_keyring(db, TenantId(tenant_id)) if kind == "full" else None
    reference = Reference(tenant_id, keyring)
    await child_phase(db, lambda: reference.one, concurrency=concurrency, start_at=start_at, seconds=seconds)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wall time of each phase")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (medians are printed)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests (and connections) in flight")
    child_arguments(parser, ("plain", "full"), ("tenant",))
    args = parser.parse_args()
    concurrency = args.concurrency
    if args.reference_child:
        await reference_process(
            args.reference_child,
            args.tenant,
            concurrency=concurrency,
            start_at=args.start_at,
            seconds=args.seconds,
        )
        return

    db = await scratch_database("rcm_bench_read")
    tenant_id = TenantId(await db.tenant_id(API_TENANT))
    one = ApiServers(db, [PORT], pool_size=concurrency).start()
    two = ApiServers(db, [PORT + 1, PORT + 2], pool_size=concurrency // 2).start()
    api1, api2 = Series("API, 1 process"), Series("API, 2 processes")
    plain, full = Series("asyncpg SELECT, 1 process"), Series("asyncpg SELECT+decrypt+audit, 1 process")
    plain2, full2 = Series("asyncpg SELECT, 2 processes"), Series("asyncpg SELECT+decrypt+audit, 2 processes")
    pool = await reference_pool(db, concurrency)
    try:
        bearer = token(PORT, db.clients[API_TENANT])
        await seed_patients(PORT, bearer)
        keyring = await tenant_keyring(db, tenant_id)
        requests = list_requests(bearer)
        references = ((plain, Reference(tenant_id, None)), (full, Reference(tenant_id, keyring)))
        # Warm-up, both sides: pools, key caches, prepared statements on every connection.
        for servers in (one, two):
            await drive_http(servers, requests, concurrency=concurrency, seconds=1.5, expect=200)
        for _series, reference in references:
            await drive_pool(pool, reference.one, concurrency=concurrency, seconds=1.5)
        for _ in range(args.runs):
            for series, servers in ((api1, one), (api2, two)):
                await db.vacuum()
                series.phases.append(
                    await drive_http(
                        servers, requests, concurrency=concurrency, seconds=args.seconds, expect=200
                    )
                )
            for series, reference in references:
                await db.vacuum()
                series.phases.append(
                    await drive_pool(pool, reference.one, concurrency=concurrency, seconds=args.seconds)
                )
            for series, kind in ((plain2, "plain"), (full2, "full")):
                await db.vacuum()
                child = ["--reference-child", kind, "--tenant", str(tenant_id)]
                series.phases.append(
                    await drive_processes(
                        db, Path(__file__), child, processes=2, concurrency=concurrency, seconds=args.seconds
                    )
                )
    finally:
        await pool.close()
        one.stop()
        two.stop()
    report(
        f"read: GET /patients?limit={PAGE} (PHI decrypted, audited), {concurrency} in flight,"
        f" {args.runs} interleaved runs of {args.seconds:.0f} s, medians [range]",
        "lists/s",
        [api1, api2],
        [plain, full, plain2, full2],
        pairs=[(api1, plain), (api1, full), (api2, plain2), (api2, full2)],
    )


if __name__ == "__main__":
    asyncio.run(main())
