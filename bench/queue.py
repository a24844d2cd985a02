"""Next-item lease latency of the coding queue, beside the physical minimum of the same work.

    make bench-queue          (or: .venv/bin/python bench/queue.py [--seconds 5] [--runs 3])

100,000 coding items in 20 practices; 50 coders, each assigned to all 20, each asking for the next item in
a loop (one unit of work per lease, ``rcm.workqueue.service.lease_next_as_staff``: the transaction bound to the
coder's own live assignments, the one-statement fair lease with its event and the audit event, commit; three
round trips on the driver's connection; ``--scope`` measures the same work through ``staff_scope`` and
``lease_next`` instead, four round trips through the session). The reference is the bare minimum of "take one row":
a single-row ``UPDATE ... RETURNING`` by primary key and its commit, on the same pool (the app role under
RLS, so the transaction binds its tenant first, as every statement of the app role must) at the same
concurrency. Phases alternate (ours, reference...) for the same wall time with VACUUM ANALYZE between;
latencies are pooled over the runs (p50 and p99 printed), rates are medians with their range. The target:
our p99 at most 3x the reference's. Uses RCM_DATABASE_URL when set, otherwise the embedded PostgreSQL under
.rcm/bench-pg; drops and creates the database rcm_bench_queue. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import stdlib_first  # noqa: F401 - first: the standard library's queue before this file

# isort: split
import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
from benchkit import Database, scratch_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.config import Settings
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.kit.db import create_engine, session_factory
from rcm.tenancy.staff import staff_scope
from rcm.workqueue import service
from rcm.workqueue.models import QueueKind

PRACTICES = 20
ITEMS = 100_000
CODERS = 50
REQUEST = RequestInfo(request_id="bench-queue", trace_id="")


@dataclass
class Series:
    label: str
    latencies: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    def line(self) -> str:
        return (
            f"{self.label:<58} {statistics.median(self.rates):8.1f} /s  [{min(self.rates):.1f}-{max(self.rates):.1f}]"
            f"  p50 {self.pct(0.50):6.2f} ms  p99 {self.pct(0.99):6.2f} ms  (n={len(self.latencies)})"
        )


async def seed(db: Database) -> tuple[list[uuid.UUID], list[uuid.UUID], list[tuple[uuid.UUID, uuid.UUID]]]:
    """20 practices (the demo's and more), 50 coders assigned to all, 100,000 items; as the owner."""
    conn = await asyncpg.connect(db.admin)
    try:
        for n in range(PRACTICES - 3):
            slug = f"bench-practice-{n:02d}"
            manifest = json.dumps(
                {
                    "slug": slug,
                    "name": "Bench practice",
                    "billing_provider": {"npi": "1003000126", "name": "B"},
                }
            )
            await conn.execute(
                "INSERT INTO rcm.tenant (id, slug, name, manifest) VALUES ($1, $2, 'Bench', $3::jsonb)"
                " ON CONFLICT DO NOTHING",
                uuid.uuid4(),
                slug,
                manifest,
            )
        tenants = [r["id"] for r in await conn.fetch("SELECT id FROM rcm.tenant ORDER BY slug")][:PRACTICES]
        coders = [uuid.uuid4() for _ in range(CODERS)]
        await conn.executemany(
            "INSERT INTO rcm.app_user (id, issuer, subject, email, display_name, roles)"
            " VALUES ($1, 'bench', $2, $2, 'Bench coder', ARRAY['coder'])",
            [(c, f"coder-{c}@bench.invalid") for c in coders],
        )
        await conn.executemany(
            "INSERT INTO rcm.staff_assignment (tenant_id, user_id) VALUES ($1, $2)",
            [(t, c) for t in tenants for c in coders],
        )
        # Spread over 20 practices, unequal on purpose (one practice holds a quarter of the backlog).
        await conn.execute(
            """
            INSERT INTO rcm.work_item (tenant_id, id, kind, subject_type, subject_id, status, priority, due_at,
                                       created_at)
            SELECT t.ids[CASE WHEN g % 4 = 0 THEN 1 ELSE 1 + g % array_length(t.ids, 1) END],
                   gen_random_uuid(), 'coding', 'encounter', gen_random_uuid(), 'open', 1 + g % 5,
                   now() - (g || ' seconds')::interval + interval '48 hours', now() - (g || ' seconds')::interval
            FROM generate_series(1, $2) g, (SELECT $1::uuid[] AS ids) t
            """,
            tenants,
            ITEMS,
        )
        rows = await conn.fetch("SELECT tenant_id, id FROM rcm.work_item ORDER BY random() LIMIT 20000")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return tenants, coders, [(r["tenant_id"], r["id"]) for r in rows]


async def drive(one: Callable[[int, int], Awaitable[None]], seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def worker(w: int) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await one(w, next(counter))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(CODERS)))
    return len(latencies) / (time.perf_counter() - started), latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wall time of each phase")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs")
    parser.add_argument(
        "--scope", action="store_true", help="lease through staff_scope + lease_next (4 round trips)"
    )
    args = parser.parse_args()

    db = await scratch_database("rcm_bench_queue")
    _tenants, coders, rows = await seed(db)
    settings = Settings(env="dev", database_url=db.admin, data_dir=db.data_dir)
    keystore = KeyStore(key_provider(settings))
    # One pool for both sides, a connection per coder: the app role, under RLS.
    engine = create_engine(db.app, pool_size=CODERS, application_name="bench-queue")
    sessions: async_sessionmaker[AsyncSession] = session_factory(engine)
    principals = [
        Principal(
            kind=PrincipalKind.USER,
            subject=str(c),
            roles=frozenset({Role.CODER}),
            scopes=frozenset(),
            token_id=f"bench-{c}",
            user_id=c,
        )
        for c in coders
    ]
    leased = 0

    async def lease(worker: int, _n: int) -> None:
        nonlocal leased
        if args.scope:
            async with staff_scope(sessions, keystore, principals[worker], REQUEST) as scope:
                item = await service.lease_next(scope, QueueKind.CODING)
        else:
            item = await service.lease_next_as_staff(sessions, principals[worker], REQUEST, QueueKind.CODING)
        if item is None:
            raise SystemExit("the queue ran dry: raise ITEMS or lower --seconds")
        leased += 1

    bind = text("SELECT set_config('rcm.tenant_id', :tenant, true)")
    take = text(
        "UPDATE rcm.work_item SET updated_at = clock_timestamp() WHERE tenant_id = :t AND id = :i RETURNING id"
    )

    async def bare(_worker: int, n: int) -> None:
        tenant_id, item_id = rows[n % len(rows)]
        async with engine.connect() as conn, conn.begin():
            await conn.execute(bind, {"tenant": str(tenant_id)})
            (await conn.execute(take, {"t": tenant_id, "i": item_id})).one()

    ours = Series(f"lease next item (staff scope + fair lease + audit), {CODERS} coders")
    reference = Series(f"bare UPDATE ... RETURNING + commit, same pool, {CODERS} in flight")
    try:
        await drive(lease, 1.0)  # warm-up: connections, prepared statements
        await drive(bare, 1.0)
        for _ in range(args.runs):
            for series, one in ((ours, lease), (reference, bare)):
                await db.vacuum()
                rate, latencies = await drive(one, args.seconds)
                series.rates.append(rate)
                series.latencies += latencies
    finally:
        await engine.dispose()
    print(
        f"\nqueue: next-item lease, {ITEMS:,} items in {PRACTICES} practices, {CODERS} concurrent coders,"
        f" {args.runs} interleaved runs of {args.seconds:.0f} s ({leased:,} items leased)"
    )
    print(ours.line())
    print(reference.line())
    ratio = ours.pct(0.99) / reference.pct(0.99)
    print(f"p99 ratio ours / reference: {ratio:.2f} (target <= 3.00: {'met' if ratio <= 3 else 'NOT met'})")
    print(f"p50 ratio ours / reference: {ours.pct(0.50) / reference.pct(0.50):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
