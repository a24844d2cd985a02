"""Re-sealing blobs after a key rotation: MiB/s of the re-encryption job's blob pass, beside copying the same
blobs through the store (open every blob and ``put`` its plaintext as a new blob: the same decrypt, encrypt
and write, without generations, the atomic flip or the resume bookkeeping).

    .venv/bin/python bench/reseal.py [--blobs 8] [--mib 8] [--runs 3]

For each backend (PostgreSQL chunks; a directory under a temporary path), ``--blobs`` blobs of ``--mib`` MiB
are stored under the practice's PHI key; then runs are interleaved: rotate and run the job's blob pass
(``BlobResealer`` through ``reencrypt_tenant_rows``), then the copy (its new blobs deleted afterwards,
untimed). VACUUM ANALYZE between phases; medians printed with their ranges.

Uses RCM_DATABASE_URL when set, otherwise the embedded PostgreSQL under .rcm/bench-pg; drops and creates the
database rcm_bench_reseal.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from benchkit import API_TENANT, scratch_database

from rcm.audit.events import request_info_from
from rcm.blobs.models import BlobBackend
from rcm.blobs.reseal import BlobResealer
from rcm.blobs.store import BlobStore
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.crypto.reencrypt import reencrypt_tenant_rows
from rcm.identity.testing import client_principal
from rcm.kit.db import create_engine, session_factory, tenant_transaction
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import TenantScope

DB_NAME = "rcm_bench_reseal"
PIECE = 64 * 1024


async def _source(mib: int) -> AsyncIterator[bytes]:
    piece = os.urandom(PIECE)
    for _ in range(mib * 1024 * 1024 // PIECE):
        yield piece


async def main(blob_count: int, mib: int, runs: int) -> None:
    db = await scratch_database(DB_NAME)
    settings = Settings(env="dev", database_url=db.admin, data_dir=db.data_dir)
    engine = create_engine(db.app, pool_size=4)
    admin_engine = create_engine(db.admin, pool_size=1)
    sessions, admin_sessions = session_factory(engine), session_factory(admin_engine)
    keys = KeyStore(key_provider(settings))
    tenant = TenantId(await db.tenant_id(API_TENANT))
    total = blob_count * mib

    def scope() -> AbstractAsyncContextManager[TenantScope]:
        return job_tenant_scope(
            sessions,
            keys,
            tenant,
            actor=client_principal(tenant),
            request=request_info_from(None),
            job="bench.reseal",
        )

    with tempfile.TemporaryDirectory() as tmp:
        for backend in (BlobBackend.POSTGRES, BlobBackend.DIRECTORY):
            store = BlobStore(backend, Path(tmp) / "blobs")
            ids: list[uuid.UUID] = []
            for _ in range(blob_count):
                async with scope() as s:
                    ids.append((await store.put(s, _source(mib), content_type="application/pdf")).id)
            ours: list[float] = []
            reference: list[float] = []
            for run in range(runs):
                await db.vacuum()
                async with tenant_transaction(admin_sessions, TenantContext.single(tenant)) as session:
                    await keys.rotate(session, tenant)
                keys.evict(tenant)
                started = time.perf_counter()
                report = await reencrypt_tenant_rows(
                    sessions, keys, tenant, sealed=[BlobResealer(store)], tables=()
                )
                seconds = time.perf_counter() - started
                assert report.resealed == blob_count, report
                ours.append(total / seconds)
                await db.vacuum()
                copies: list[uuid.UUID] = []
                started = time.perf_counter()
                for blob_id in ids:
                    async with scope() as s:
                        copy = await store.put(s, store.open(s, blob_id), content_type="application/pdf")
                    copies.append(copy.id)
                copy_seconds = time.perf_counter() - started
                reference.append(total / copy_seconds)
                async with scope() as s:
                    for blob_id in copies:
                        await store.delete(s, blob_id)
                print(
                    f"{backend.value} run {run + 1}: re-seal {seconds:.2f} s ({total / seconds:,.1f} MiB/s);"
                    f" copy through the store {copy_seconds:.2f} s ({total / copy_seconds:,.1f} MiB/s)",
                    flush=True,
                )
            async with scope() as s:
                for blob_id in ids:  # the next backend's runs re-seal only its own blobs
                    await store.delete(s, blob_id)
            med_ours, med_ref = statistics.median(ours), statistics.median(reference)
            print(f"\n{backend.value}: {blob_count} blobs x {mib} MiB, median of {runs} interleaved runs")
            print(f"{'re-seal job (MiB/s)':<40} {med_ours:10,.1f}  [{min(ours):,.1f}-{max(ours):,.1f}]")
            print(
                f"{'copy through the store (MiB/s)':<40} {med_ref:10,.1f}"
                f"  [{min(reference):,.1f}-{max(reference):,.1f}]"
            )
            print(f"ratio re-seal / copy: {med_ours / med_ref:.2f}\n", flush=True)
    await engine.dispose()
    await admin_engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blobs", type=int, default=8)
    parser.add_argument("--mib", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.blobs, args.mib, args.runs))
