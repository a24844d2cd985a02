"""Bulk intake: rows written per second by the bulk job, beside PostgreSQL COPY of the same rows into the same
tables; and the job's peak RSS for 10,000 and 100,000 lines (it must stay flat).

    make bench-bulk            (or: .venv/bin/python bench/bulk.py [--lines 10000] [--runs 3])

Each run makes a fresh NDJSON file of ``--lines`` encounters (inline patient, coverage, provider, two
diagnoses, two charge lines), stores it through the blob store and runs the job (``rcm.bulk.service.run_job``,
what the worker's ``bulk.run_intake`` calls). The rows it counts are the domain rows the job wrote (patient,
coverage, encounter, diagnosis, charge_line, encounter_event, work_item, work_item_event); the job's own
bookkeeping (line outcomes, audit events) is work the reference does not do, and is not counted. The
reference then reads exactly those rows back and COPYs them (``copy_records_to_table``, binary COPY) into the
same tables under a second practice (as the administrative role: PostgreSQL refuses COPY FROM under
row-level security). Runs are interleaved (job, COPY, job,
COPY...), VACUUM ANALYZE between phases, medians printed with their ranges.

Peak RSS is measured in a fresh process per size (``ru_maxrss`` of a child that uploads and runs one job).
Uses RCM_DATABASE_URL when set, otherwise the embedded PostgreSQL under .rcm/bench-pg; drops and creates the
database rcm_bench_bulk. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from benchkit import API_TENANT, Database, scratch_database

from rcm.audit.events import request_info_from
from rcm.blobs.store import BlobStore
from rcm.bulk.models import BulkFormat
from rcm.bulk.service import run_job, store_upload, submit
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.testing import client_principal
from rcm.kit.db import create_engine, session_factory
from rcm.kit.tenant import TenantId
from rcm.tenancy.jobs import job_tenant_scope

COPY_TENANT = "lakeside-pediatrics"
DB_NAME = "rcm_bench_bulk"
# Parents first (COPY checks foreign keys row by row, as inserts do).
TABLES = (
    "patient",
    "coverage",
    "encounter",
    "diagnosis",
    "charge_line",
    "encounter_event",
    "work_item",
    "work_item_event",
)


def write_file(path: Path, lines: int) -> None:
    day = (date.today() - timedelta(days=2)).isoformat()
    with path.open("w") as out:
        for _ in range(lines):
            tag = uuid.uuid4().hex[:12]
            out.write(
                json.dumps(
                    {
                        "external_id": f"BULK-{tag}",
                        "service_date": day,
                        "place_of_service": "11",
                        "patient": {
                            "mrn": f"BMRN-{tag}",
                            "given_name": "Bench",
                            "family_name": f"Patient{tag}",
                            "birth_date": "1970-05-17",
                            "sex": "male",
                        },
                        "coverage": {"payer_id": "DEMO-MCR", "member_id": f"M{tag}", "relationship": "self"},
                        "rendering_provider": {"npi": "1234567893", "name": "Dr Bench Fake"},
                        "diagnoses": [{"code": "E11.9"}, {"code": "I10"}],
                        "charges": [
                            {"procedure_code": "99213", "charge_cents": 12500, "diagnosis_pointers": [1, 2]},
                            {"procedure_code": "85025", "charge_cents": 1650, "diagnosis_pointers": [1]},
                        ],
                    }
                )
                + "\n"
            )


async def file_stream(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while piece := source.read(64 * 1024):
            yield piece


class Job:
    def __init__(self, db: Database) -> None:
        self.settings = Settings(env="dev", database_url=db.admin, data_dir=db.data_dir)
        self.engine = create_engine(db.app, pool_size=4)
        self.sessions = session_factory(self.engine)
        self.keystore = KeyStore(key_provider(self.settings))
        self.store = BlobStore()

    async def run(self, tenant_id: TenantId, path: Path) -> float:
        """Upload ``path`` and run its job; returns the job's seconds (upload excluded)."""
        async with job_tenant_scope(
            self.sessions,
            self.keystore,
            tenant_id,
            actor=client_principal(tenant_id),
            request=request_info_from(None),
            job="bench.bulk",
        ) as scope:
            blob_id, sha = await store_upload(
                scope, self.store, file_stream(path), fmt=BulkFormat.NDJSON, max_bytes=2**40
            )
            _, job = await submit(scope, self.store, blob_id=blob_id, sha256=sha, fmt=BulkFormat.NDJSON)
        started = time.perf_counter()
        await run_job(
            self.sessions,
            self.keystore,
            self.store,
            tenant_id,
            job.id,
            batch_lines=self.settings.bulk_batch_lines,
            skew=timedelta(days=1),
        )
        return time.perf_counter() - started


async def written_since(db: Database, tenant_id: uuid.UUID, since: datetime) -> dict[str, list[Any]]:
    connection = await asyncpg.connect(db.admin)
    try:
        async with connection.transaction():
            await connection.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(tenant_id))
            return {
                table: await connection.fetch(
                    f"SELECT * FROM rcm.{table} WHERE tenant_id = $1 AND created_at >= $2",  # noqa: S608
                    tenant_id,
                    since,
                )
                for table in TABLES
            }
    finally:
        await connection.close()


async def copy_rows(db: Database, rows: dict[str, list[Any]], source: uuid.UUID, target: uuid.UUID) -> float:
    """COPY ``rows`` (read from practice ``source``) into the same tables under practice ``target``; the
    providers they refer to are copied first, untimed (the job found or made them in an earlier run)."""
    # As the administrative role: PostgreSQL refuses COPY FROM under row-level security, and the app role
    # is always under it.
    connection = await asyncpg.connect(db.admin)
    try:
        records = {table: [(target, *tuple(r)[1:]) for r in table_rows] for table, table_rows in rows.items()}
        await _copy_providers(connection, source, target)
        started = time.perf_counter()
        async with connection.transaction():
            await connection.execute("SELECT set_config('rcm.tenant_id', $1, true)", str(target))
            for table in TABLES:
                if records[table]:
                    columns = list(rows[table][0].keys())
                    await connection.copy_records_to_table(
                        table, schema_name="rcm", records=records[table], columns=columns
                    )
        return time.perf_counter() - started
    finally:
        await connection.close()


async def _copy_providers(
    connection: asyncpg.Connection, source: uuid.UUID, target: uuid.UUID
) -> dict[uuid.UUID, uuid.UUID]:
    """Source provider id -> the target practice's provider with the same NPI (copied when it has none)."""
    providers = await connection.fetch("SELECT * FROM rcm.provider WHERE tenant_id = $1", source)
    by_npi = {
        r["npi"]: r["id"]
        for r in await connection.fetch("SELECT id, npi FROM rcm.provider WHERE tenant_id = $1", target)
    }
    fresh = [(target, *tuple(r)[1:]) for r in providers if r["npi"] not in by_npi]
    if fresh:
        await connection.copy_records_to_table(
            "provider", schema_name="rcm", records=fresh, columns=list(providers[0].keys())
        )
    return {r["id"]: by_npi.get(r["npi"], r["id"]) for r in providers}


async def vacuum(db: Database) -> None:
    connection = await asyncpg.connect(db.admin)
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


def rss_child(lines: int) -> int:
    """Peak RSS (KiB) of a fresh process that uploads and runs one job of ``lines`` lines."""
    output = subprocess.run(  # noqa: S603 - this interpreter, this script
        [sys.executable, __file__, "--rss-child", str(lines)], capture_output=True, text=True, check=True
    ).stdout
    return int(output.strip().splitlines()[-1])


async def child(lines: int) -> None:
    db = await existing_database()
    job = Job(db)
    tenant = TenantId(await db.tenant_id(API_TENANT))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bulk.ndjson"
        write_file(path, lines)
        await job.run(tenant, path)
    await job.engine.dispose()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


async def existing_database() -> Database:
    info = json.loads(os.environ["RCM_BENCH_BULK_DB"])
    return Database(admin=info["admin"], app=info["app"], data_dir=Path(info["data_dir"]), clients={})


async def main(lines: int, runs: int, rss_sizes: list[int]) -> None:
    db = await scratch_database(DB_NAME)
    os.environ["RCM_BENCH_BULK_DB"] = json.dumps(
        {"admin": db.admin, "app": db.app, "data_dir": str(db.data_dir)}
    )
    job = Job(db)
    ours_id = await db.tenant_id(API_TENANT)
    copy_id = await db.tenant_id(COPY_TENANT)
    ours_rates: list[float] = []
    copy_rates: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            path = Path(tmp) / f"run{run}.ndjson"
            write_file(path, lines)
            await vacuum(db)
            since = datetime.now().astimezone()
            seconds = await job.run(TenantId(ours_id), path)
            rows = await written_since(db, ours_id, since)
            count = sum(len(r) for r in rows.values())
            ours_rates.append(count / seconds)
            await vacuum(db)
            copy_seconds = await copy_rows(db, rows, ours_id, copy_id)
            copy_rates.append(count / copy_seconds)
            print(
                f"run {run + 1}: {lines} lines -> {count} rows; job {seconds:.2f} s ({count / seconds:,.0f} rows/s,"
                f" {lines / seconds:,.0f} encounters/s); COPY {copy_seconds:.2f} s ({count / copy_seconds:,.0f} rows/s)",
                flush=True,
            )
    await job.engine.dispose()
    ours, ref = statistics.median(ours_rates), statistics.median(copy_rates)
    print(f"\nbulk intake, {lines} NDJSON encounters, median of {runs} interleaved runs")
    print(f"{'bulk job (rows/s)':<40} {ours:12,.0f}  [{min(ours_rates):,.0f}-{max(ours_rates):,.0f}]")
    print(
        f"{'PostgreSQL COPY, same rows (rows/s)':<40} {ref:12,.0f}  [{min(copy_rates):,.0f}-{max(copy_rates):,.0f}]"
    )
    print(f"ratio bulk job / COPY: {ours / ref:.2f} (target >= 0.30)")
    for size in rss_sizes:
        print(f"peak RSS of the job process, {size:>7,} lines: {rss_child(size) / 1024:8.1f} MiB", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rss", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        asyncio.run(child(args.rss_child))
    else:
        asyncio.run(main(args.lines, args.runs, args.rss))
