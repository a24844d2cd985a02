"""Encounters per second through the running API over loopback, beside the same inserts done by a plain
asyncpg script (the ceiling). The ratio is the cost of our layers: HTTP, auth, validation, idempotency,
field encryption, blind indexes, RLS context, ORM and the hash-chained audit trail.

    .venv/bin/python bench/intake.py [--encounters 2000] [--concurrency 16]

Uses RCM_DATABASE_URL when set, otherwise the embedded PostgreSQL under .rcm/bench-pg. It creates (and
drops first) a database named rcm_bench, seeds the demo practices and serves the API in a child process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from rcm.config import APP_ROLE, Settings, async_url
from rcm.demo import seed_demo
from rcm.kit.migrations import upgrade_to_head

ROOT = Path(__file__).resolve().parents[1]
PORT = 8765
API_TENANT = "sunrise-family-medicine"
CEILING_TENANT = "lakeside-pediatrics"


def server_url() -> str:
    if os.environ.get("RCM_DATABASE_URL"):
        return os.environ["RCM_DATABASE_URL"]
    from rcm.kit.embedded import start_embedded_postgres

    return start_embedded_postgres(ROOT / ".rcm" / "bench-pg")


async def recreate(server: str, name: str) -> str:
    engine = create_async_engine(async_url(server), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def encounter(i: int) -> dict[str, Any]:
    tag = f"{i:07d}-{uuid.uuid4().hex[:6]}"
    return {
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
        "coverage": {"payer_id": "DEMO-MCR", "member_id": f"BM{tag.replace('-', '')}"},
        "rendering_provider": {"npi": "1234567893", "name": "Dr Bench Fake"},
        "documentation": "BENCH NOTE: synthetic office visit. " * 8,
        "diagnoses": [{"code": "E11.9"}, {"code": "I10"}],
        "charges": [
            {"procedure_code": "99213", "charge_cents": 12500, "diagnosis_pointers": [1, 2]},
            {"procedure_code": "G2211", "charge_cents": 1650, "diagnosis_pointers": [1]},
        ],
    }


async def run_api(
    base: str, client_id: str, secret: str, n: int, concurrency: int
) -> tuple[float, list[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        token_response = await http.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        )
        token_response.raise_for_status()
        headers = {"Authorization": f"Bearer {token_response.json()['access_token']}"}
        url = f"/api/v1/tenants/{API_TENANT}/encounters"
        latencies: list[float] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post(
                    url, json=encounter(i), headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
                )
                if response.status_code != 201:
                    raise SystemExit(f"API answered {response.status_code}: {response.text[:300]}")
                latencies.append(time.perf_counter() - started)

        for i in range(50):  # warm-up: connection pool, key cache, JIT-free but cache-warm paths
            await http.post(
                url, json=encounter(10_000_000 + i), headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
            )
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - started), latencies


async def run_ceiling(app_dsn: str, tenant_id: uuid.UUID, n: int, concurrency: int) -> float:
    """The same rows per encounter, inserted with plain asyncpg as the app role, one transaction each."""
    pool = await asyncpg.create_pool(app_dsn, min_size=concurrency, max_size=concurrency)
    assert pool is not None
    provider_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(tenant_id))
        await conn.execute(
            "INSERT INTO rcm.provider (tenant_id, id, npi, name, kind) VALUES ($1, $2, '1999999992', 'x', 'individual')",
            tenant_id,
            provider_id,
        )
    blob = secrets.token_bytes

    async def one(i: int) -> None:
        patient, coverage, enc = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(tenant_id))
            await conn.execute(
                "INSERT INTO rcm.idempotency_record (tenant_id, id, principal, key, route, request_hash, status_code,"
                " response_body) VALUES ($1, $2, 'client:x', $3, 'POST /encounters', $4, 201, $5)",
                tenant_id,
                uuid.uuid4(),
                uuid.uuid4().hex,
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
            await conn.execute(
                "INSERT INTO rcm.coverage (tenant_id, id, patient_id, payer_id, member_id, member_id_bidx,"
                " relationship, priority) VALUES ($1, $2, $3, 'DEMO-MCR', $4, $5, 'self', 'primary')",
                tenant_id,
                coverage,
                patient,
                blob(45),
                blob(32),
            )
            await conn.execute(
                "INSERT INTO rcm.encounter (tenant_id, id, external_id, patient_id, coverage_id,"
                " rendering_provider_id, billing_provider_id, service_date, place_of_service, documentation,"
                " status, total_charge_cents, source) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, '11', $8,"
                " 'needs_coding', 14150, 'json')",
                tenant_id,
                enc,
                f"C-{i}-{enc.hex[:6]}",
                patient,
                coverage,
                provider_id,
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
            # The coding item and its "created" event in one statement, as the work queue writes them.
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

    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await one(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = n / (time.perf_counter() - started)
    await pool.close()
    return rate


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the API process exited during start-up")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the API did not become ready within 60 s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encounters", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", metavar="FILE", help="run the API under cProfile and write stats here")
    args = parser.parse_args()

    admin = await recreate(server_url(), "rcm_bench")
    await asyncio.to_thread(upgrade_to_head, admin)
    data_dir = ROOT / ".rcm" / "bench-data"
    settings = Settings(env="dev", database_url=admin, data_dir=data_dir)
    await seed_demo(settings)
    clients = json.loads((data_dir / "demo-clients.json").read_text())[API_TENANT]

    env = {
        **os.environ,
        "RCM_ENV": "dev",
        "RCM_DATABASE_URL": admin,
        "RCM_DATA_DIR": str(data_dir),
        "RCM_RATE_LIMIT_PER_MINUTE": "100000000",
        "RCM_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",
        "RCM_LOG_LEVEL": "WARNING",
        "RCM_BASE_URL": f"http://127.0.0.1:{PORT}",
    }
    base = f"http://127.0.0.1:{PORT}"
    profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
    command = [sys.executable, *profile, "-m", "rcm.cli", "serve", "--port", str(PORT)]
    process = subprocess.Popen(command, env=env)  # noqa: S603
    try:
        wait_ready(base, process)
        api_rate, latencies = await run_api(
            base, clients["client_id"], clients["client_secret"], args.encounters, args.concurrency
        )
    finally:
        process.send_signal(signal.SIGINT)  # graceful: uvicorn drains, cProfile writes its stats
        process.wait(timeout=30)

    app_url = make_url(admin).set(username=APP_ROLE, password=None, drivername="postgresql")
    engine = create_async_engine(async_url(admin), poolclass=NullPool)
    async with engine.connect() as conn:
        ceiling_tenant = (
            await conn.execute(text("SELECT id FROM rcm.tenant WHERE slug = :s"), {"s": CEILING_TENANT})
        ).scalar_one()
    await engine.dispose()
    ceiling = await run_ceiling(
        app_url.render_as_string(hide_password=False), ceiling_tenant, args.encounters, args.concurrency
    )

    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
    print(f"encounters: {args.encounters}, concurrency: {args.concurrency}, one API process, loopback")
    print(
        f"API (POST /encounters, inline patient+coverage+provider): {api_rate:8.1f} encounters/s  p50 {p50:.1f} ms  p95 {p95:.1f} ms"
    )
    print(f"plain asyncpg, same inserts, app role + RLS (ceiling):   {ceiling:8.1f} encounters/s")
    print(f"ratio API / ceiling: {api_rate / ceiling:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
