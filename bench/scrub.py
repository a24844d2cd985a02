"""Encounters scrubbed per second through the running API, beside reading the same encounters.

    make bench-scrub           (or: .venv/bin/python bench/scrub.py [--seconds 5] [--runs 3])

Target (issue 6): scrub + read >= 0.5x read alone. A scrub reads the encounter (one statement: encounter,
patient sex, coverage, providers, diagnoses and lines), looks up the code sets (code validity, NCCI pairs,
MUE limits, sex/age edits: one statement), runs every rule in memory and audits; a stored scrub also looks
up the encounter's live billing item and writes the run, its per-rule results, a new billing item, the
audit event and the idempotent answer in one statement (9 round trips in all). Measured, interleaved, each
phase for the same wall time with VACUUM ANALYZE between phases, medians of the runs with their ranges:
- "API scrub, dry run": ``POST .../encounters/{id}/scrub?dry_run=true`` (nothing written but the audit);
- "API scrub, stored": ``POST .../encounters/{id}/scrub`` with a fresh Idempotency-Key per request;
- "API read": ``GET .../encounters/{id}`` of the same encounters, by the same biller (read alone);
- "asyncpg read": the tenant context and the SELECTs of the encounter, its diagnoses and lines, as the app
  role under RLS, one transaction each (the floor of any read).
The code sets hold what the demo seed loads (ICD-10-CM, HCPCS, the demo CPT file) and a small release of
every other kind (one NCCI pair, MUEs, one sex/age edit), so every lookup runs. One API process; RCM_DATABASE_URL when set, otherwise the embedded
PostgreSQL under .rcm/bench-pg; drops and creates rcm_bench_scrub. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import asyncpg
from benchkit import (
    API_TENANT,
    ApiServers,
    Connection,
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
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from rcm.codes.importers.base import CodeRow, MueRow, ParsedRelease, PtpRow, Row, SexAgeRow
from rcm.codes.models import CodeSet, CodeSystem
from rcm.codes.service import list_releases, load_release
from rcm.config import async_url

PORT = 8785
ENCOUNTERS = 200
BILLER = "biller@demo.rcm.test"
START = date(2025, 10, 1)


async def load_code_sets(db: Database) -> None:
    """A small release of every code set the scrub reads that the demo seed did not load (the demo loads
    ICD-10-CM, HCPCS and its CPT file; NCCI, MUE and sex/age edits come from the operator's CMS files)."""
    releases: list[tuple[CodeSet, list[Row]]] = [
        (CodeSet.ICD10CM, [CodeRow("E119", "Type 2 diabetes"), CodeRow("I10", "Hypertension")]),
        (CodeSet.CPT, [CodeRow("99213", "Office visit"), CodeRow("20610", "Joint injection")]),
        (CodeSet.HCPCS, [CodeRow("G2211", "Visit complexity")]),
        (CodeSet.MODIFIER, [CodeRow("XS", "Separate structure"), CodeRow("LT", "Left side")]),
        (CodeSet.NCCI_PTP, [PtpRow("20610", "99213", START, None, 1, False, "bench")]),
        (CodeSet.MUE, [MueRow("99213", 1, 2, "bench"), MueRow("G2211", 1, 2, "bench")]),
        (CodeSet.SEX_AGE, [SexAgeRow(CodeSystem.CPT, "99381", None, 0, 1)]),
    ]
    engine = create_async_engine(async_url(db.admin), poolclass=NullPool)
    try:
        async with AsyncSession(engine) as session, session.begin():
            loaded = {release.code_set for release in await list_releases(session)}
            for code_set, rows in releases:
                if code_set in loaded:
                    continue
                parsed = ParsedRelease(
                    code_set, f"BENCH-{code_set.value}", START, None, "bench", uuid.uuid4().hex, rows
                )
                await load_release(session, parsed)
    finally:
        await engine.dispose()


async def seed_encounters(port: int, bearer: str) -> list[str]:
    """ENCOUNTERS encounters through the API (the practice's own client), as intake writes them."""
    connection = await Connection.open(port)
    ids = []
    try:
        for i in range(ENCOUNTERS):
            body = json.dumps(
                {
                    "external_id": f"SCRUB-{i:05d}",
                    "service_date": (date.today() - timedelta(days=3)).isoformat(),
                    "place_of_service": "11",
                    "patient": {
                        "mrn": f"SMRN-{i:05d}",
                        "given_name": "Scrub",
                        "family_name": f"Bench{i:05d}",
                        "birth_date": "1970-05-17",
                        "sex": "male",
                    },
                    "coverage": {"payer_id": "DEMO-MCR", "member_id": f"SM{i:05d}"},
                    "rendering_provider": {"npi": "1234567893", "name": "Dr Bench Fake"},
                    "diagnoses": [{"code": "E11.9"}, {"code": "I10"}],
                    "charges": [
                        {"procedure_code": "99213", "charge_cents": 12500, "diagnosis_pointers": [1, 2]},
                        {"procedure_code": "G2211", "charge_cents": 1650, "diagnosis_pointers": [1]},
                    ],
                }
            ).encode()
            headers = {
                "Authorization": f"Bearer {bearer}",
                "Content-Type": "application/json",
                "Idempotency-Key": f"seed-{i}",
            }
            path = f"/api/v1/tenants/{API_TENANT}/encounters"
            status, answer = await connection.send(raw_request("POST", path, headers, body))
            if status != 201:
                raise SystemExit(f"seeding answered {status}: {answer[:300]!r}")
            ids.append(json.loads(answer)["id"])
    finally:
        connection.close()
    return ids


def user_token(db: Database, servers: ApiServers, email: str) -> str:
    """A biller's token from the dev issuer (``rcm token --user``), for the API processes' issuer."""
    env = {
        **os.environ,
        "RCM_ENV": "dev",
        "RCM_DATABASE_URL": db.admin,
        "RCM_DATA_DIR": str(db.data_dir),
        "RCM_BASE_URL": servers.base_url,
    }
    command = [sys.executable, "-m", "rcm.cli", "token", "--user", email]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    return done.stdout.strip()


def scrub_requests(bearer: str, ids: list[str], *, dry_run: bool) -> Iterator[bytes]:
    headers = {"Authorization": f"Bearer {bearer}"}
    if dry_run:
        requests = [
            raw_request("POST", f"/api/v1/tenants/{API_TENANT}/encounters/{i}/scrub?dry_run=true", headers)
            for i in ids
        ]
        return itertools.cycle(requests)
    return (
        raw_request(
            "POST",
            f"/api/v1/tenants/{API_TENANT}/encounters/{ids[n % len(ids)]}/scrub",
            {**headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        for n in itertools.count()
    )


def read_requests(bearer: str, ids: list[str]) -> Iterator[bytes]:
    headers = {"Authorization": f"Bearer {bearer}"}
    return itertools.cycle(
        [raw_request("GET", f"/api/v1/tenants/{API_TENANT}/encounters/{i}", headers) for i in ids]
    )


class Reference:
    """The same encounter read in asyncpg: tenant context, encounter, diagnoses, lines."""

    def __init__(self, tenant_id: uuid.UUID, ids: list[str]) -> None:
        self.tenant_id = tenant_id
        self.ids = [uuid.UUID(i) for i in ids]

    async def one(self, conn: asyncpg.Connection, i: int) -> None:
        encounter_id = self.ids[i % len(self.ids)]
        await conn.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(self.tenant_id))
        await conn.fetchrow(
            "SELECT * FROM rcm.encounter WHERE tenant_id = $1 AND id = $2", self.tenant_id, encounter_id
        )
        await conn.fetch(
            "SELECT * FROM rcm.diagnosis WHERE tenant_id = $1 AND encounter_id = $2 ORDER BY sequence",
            self.tenant_id,
            encounter_id,
        )
        await conn.fetch(
            "SELECT * FROM rcm.charge_line WHERE tenant_id = $1 AND encounter_id = $2 ORDER BY line_number",
            self.tenant_id,
            encounter_id,
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wall time of each phase")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs (medians are printed)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests (and connections) in flight")
    args = parser.parse_args()
    concurrency = args.concurrency

    os.environ.setdefault("DEMO_TIN_SUNRISE", "12-3456789")  # the demo manifest's TIN reference
    db = await scratch_database("rcm_bench_scrub")
    await load_code_sets(db)
    tenant_id = await db.tenant_id(API_TENANT)
    servers = ApiServers(db, [PORT], pool_size=concurrency, base_url=f"http://127.0.0.1:{PORT}").start()
    dry, stored = Series("API scrub, dry run"), Series("API scrub, stored")
    api_read, plain = Series("API read (GET encounter)"), Series("asyncpg read (3 SELECTs)")
    pool = await reference_pool(db, concurrency)
    try:
        ids = await seed_encounters(PORT, token(PORT, db.clients[API_TENANT]))
        biller = user_token(db, servers, BILLER)
        phases = (
            (dry, scrub_requests(biller, ids, dry_run=True), 200),
            (stored, scrub_requests(biller, ids, dry_run=False), 201),
            (api_read, read_requests(biller, ids), 200),
        )
        for _, requests, expect in phases:  # warm-up: pools, key caches, prepared statements
            await drive_http(servers, requests, concurrency=concurrency, seconds=1.5, expect=expect)
        reference = Reference(tenant_id, ids)
        for _ in range(args.runs):
            for series, requests, expect in phases:
                await db.vacuum()
                series.phases.append(
                    await drive_http(
                        servers, requests, concurrency=concurrency, seconds=args.seconds, expect=expect
                    )
                )
            await db.vacuum()
            plain.phases.append(
                await drive_pool(pool, reference.one, concurrency=concurrency, seconds=args.seconds)
            )
    finally:
        await pool.close()
        servers.stop()
    report(
        f"scrub: POST /encounters/{{id}}/scrub beside reading the same {ENCOUNTERS} encounters, {concurrency} in"
        f" flight, 1 API process, {args.runs} interleaved runs of {args.seconds:.0f} s, medians [range]"
        " (target: scrub / API read >= 0.5)",
        "encounters/s",
        [dry, stored],
        [api_read, plain],
    )


if __name__ == "__main__":
    asyncio.run(main())
