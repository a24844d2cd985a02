"""Submission: claims per second from ``ready`` to ``accepted`` through the sandbox payer over the real broker,
beside the same number of bare dramatiq messages round-tripped on the same broker by the same worker.

    .venv/bin/python bench/submit.py [--claims 300] [--runs 3]

Each run makes ``--claims`` fresh encounters in the demo practice (through the service code, with its demo
codes) and scrubs them clean, so their claims are ``ready`` (not timed). Then the clock starts:
``build_batches`` groups them and sends ``claims.submit_batch`` after its commit, the worker renders each
837P, keeps it, sends it to the sandbox payer and records the receipt; once every batch is sent, one
``claims.fetch_responses`` message makes the worker fetch, keep and apply the 999 and 277CA; the clock stops
when every claim of the run has left ``submitted`` (accepted, or adjudicated already). The reference sends the
same number of messages to a no-op actor on the same broker and worker and times them until all have run.
Runs are interleaved (ours, reference, ...), medians printed with their ranges.

Needs RabbitMQ (RCM_BROKER_URL, default amqp://guest:guest@127.0.0.1:5672/). Uses RCM_DATABASE_URL when set,
otherwise the embedded PostgreSQL; drops and creates the database rcm_bench_submit.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before bench/queue.py

# isort: split
import argparse
import asyncio
import logging
import os
import shutil
import statistics
import threading
import time
import uuid
from datetime import date, timedelta

import asyncpg
from benchkit import API_TENANT, ROOT, scratch_database, seeder_scopes
from dramatiq import Worker

from rcm.audit.events import RequestInfo
from rcm.cli import DEMO_SECRETS
from rcm.config import Settings, app_database_url
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.demo import CODES, SEEDER
from rcm.encounters.schemas import ChargeLineIn, DiagnosisIn, EncounterCreate
from rcm.encounters.service import create_encounter
from rcm.kit.db import create_engine, session_factory
from rcm.kit.secrets import SecretResolver
from rcm.kit.tenant import TenantId
from rcm.patients.schemas import Address, CoverageCreate, PatientCreate
from rcm.providers.schemas import ProviderCreate
from rcm.scrub.service import scrub_encounter
from rcm.tenancy.jobs import job_tenant_scope
from rcm.worker import actor, configure_jobs, setup_broker

DB_NAME = "rcm_bench_submit"
FETCH_EVERY = 0.25  # seconds between fetch messages once every batch is sent
BROKER = os.environ.get("RCM_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
_done = 0
_done_lock = threading.Lock()


@actor(name="bench.noop", max_retries=0, time_limit_ms=60_000, queue_name="claims")
async def noop(*, tenant_id: str) -> None:
    global _done  # noqa: PLW0603 - the reference's counter
    with _done_lock:
        _done += 1


async def ready_claims(settings: Settings, tenant_id: TenantId, count: int, tag: str) -> None:
    """``count`` encounters scrubbed clean: their claims are ready (the untimed set-up)."""
    secrets = SecretResolver(settings.secrets_dir)
    async with seeder_scopes(settings, tenant_id, "bench.submit") as scopes:
        for start in range(0, count, 50):
            async with scopes() as scope:
                for index in range(start, min(start + 50, count)):
                    code, cents, diagnoses = CODES[index % len(CODES)]
                    encounter = await create_encounter(
                        scope,
                        EncounterCreate(
                            external_id=f"BENCH-{tag}-{index}",
                            service_date=date.today() - timedelta(days=3),
                            place_of_service="11",
                            patient=PatientCreate(
                                mrn=f"BENCH-{tag}-{index}",
                                given_name="Bench",
                                family_name="Demopatient",
                                birth_date=date(1970, 1, 1) + timedelta(days=index),
                                sex="female",
                                address=Address(
                                    line1="1 Bench Way", city="Springfield", state="IL", postal_code="62701"
                                ),
                            ),
                            coverage=CoverageCreate(payer_id="DEMO-MCR", member_id=f"B{tag[:6]}{index:05d}"),
                            rendering_provider=ProviderCreate(
                                npi="1910000003", name="Dr Demo Renderer (DEMO)"
                            ),
                            documentation="DEMO: bench visit.",
                            diagnoses=[DiagnosisIn(code=c) for c in diagnoses],
                            charges=[
                                ChargeLineIn(
                                    procedure_code=code,
                                    charge_cents=cents,
                                    diagnosis_pointers=list(range(1, len(diagnoses) + 1)),
                                )
                            ],
                        ),
                        scope.manifest,
                    )
                    await scrub_encounter(scope, encounter.id, dry_run=False, secrets=secrets)


async def ours(admin: str, settings: Settings, tenant_id: TenantId, count: int) -> float:
    from rcm.claims.batches import build_batches
    from rcm.claims.tasks import fetch_responses

    tag = uuid.uuid4().hex[:8]
    await ready_claims(settings, tenant_id, count, tag)
    conn = await asyncpg.connect(admin)
    try:
        engine = create_engine(app_database_url(settings), pool_size=1, application_name="bench")
        sessions = session_factory(engine)
        started = time.perf_counter()
        async with job_tenant_scope(
            sessions,
            KeyStore(key_provider(settings)),
            tenant_id,
            actor=SEEDER,
            request=RequestInfo(request_id="bench", trace_id=""),
            job="bench.submit",
        ) as scope:
            batches = [b.id for b in await build_batches(scope)]
        fetched, last_fetch = False, 0.0
        while True:
            sent = await conn.fetchval(
                "SELECT count(*) FROM rcm.submission_batch WHERE id = ANY($1) AND status = 'sent'", batches
            )
            if sent == len(batches) and time.perf_counter() - last_fetch > FETCH_EVERY:
                # The sandbox releases its answers over a few fetches, as a clearinghouse's mailbox fills.
                fetch_responses.send_now(tenant_id=str(tenant_id))
                fetched, last_fetch = True, time.perf_counter()
            waiting = await conn.fetchval(
                "SELECT count(*) FROM rcm.claim c JOIN rcm.encounter e"
                " ON e.tenant_id = c.tenant_id AND e.id = c.encounter_id"
                " WHERE e.external_id LIKE $1 AND c.state IN ('ready', 'submitted')",
                f"BENCH-{tag}-%",
            )
            if fetched and waiting == 0:
                elapsed = time.perf_counter() - started
                break
            await asyncio.sleep(0.05)
        await engine.dispose()
        return count / elapsed
    finally:
        await conn.close()


async def reference(count: int, tenant_id: TenantId) -> float:
    global _done  # noqa: PLW0603 - the reference's counter
    with _done_lock:
        _done = 0
    started = time.perf_counter()
    for _ in range(count):
        noop.send_now(tenant_id=str(tenant_id))
    while True:
        with _done_lock:
            if _done >= count:
                break
        await asyncio.sleep(0.005)
    return count / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for name, value in DEMO_SECRETS.items():
        os.environ.setdefault(name, value)
    os.environ["RCM_ENV"] = "dev"
    # The sandbox payer keeps its state under RCM_DATA_DIR: the scratch database's folder, from the demo's
    # own cycle on (a fresh database, a fresh payer: its mailbox cursors start over).
    data_dir = ROOT / ".rcm" / f"{DB_NAME}-data"
    shutil.rmtree(data_dir / "sandbox-payer", ignore_errors=True)
    os.environ["RCM_DATA_DIR"] = str(data_dir)
    db = await scratch_database(DB_NAME)
    settings = Settings(env="dev", database_url=db.admin, data_dir=db.data_dir, broker_url=BROKER)
    broker = setup_broker(settings)
    configure_jobs(settings)
    for queue in ("claims", "default"):
        broker.declare_queue(queue)
        broker.flush(queue)
    worker = Worker(broker, worker_threads=4, worker_timeout=100)
    worker.start()
    conn = await asyncpg.connect(db.admin)
    tenant_id = TenantId(await conn.fetchval("SELECT id FROM rcm.tenant WHERE slug = $1", API_TENANT))
    await conn.close()
    mine: list[float] = []
    bare: list[float] = []
    try:
        logging.getLogger("dramatiq").setLevel(logging.ERROR)  # fetch_responses returns its report
        for run in range(args.runs):
            mine.append(await ours(db.admin, settings, tenant_id, args.claims))
            bare.append(await reference(args.claims, tenant_id))
            print(
                f"run {run + 1}: ours {mine[-1]:.1f} claims/s, bare messages {bare[-1]:.1f} msg/s", flush=True
            )
    finally:
        worker.stop(timeout=10_000)
        broker.close()
    print(f"\nready -> accepted through the sandbox payer over RabbitMQ, {args.claims} claims per run")
    print(
        f"ours (build, render, send, 999/277CA)  {statistics.median(mine):8.1f} claims/s  [{min(mine):.1f}-{max(mine):.1f}]"
    )
    print(
        f"bare dramatiq round trips               {statistics.median(bare):8.1f} msg/s     [{min(bare):.1f}-{max(bare):.1f}]"
    )
    print(f"ratio ours / bare: {statistics.median(mine) / statistics.median(bare):.3f}")


if __name__ == "__main__":
    asyncio.run(main())
