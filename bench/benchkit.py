"""What both benchmarks share: a scratch database, the API processes, a lean HTTP load generator, and the
interleaved, median-of-runs reporting.

Fairness rules the scripts follow (issue 5, point 10):
- the load generator is raw asyncio sockets speaking HTTP/1.1 keep-alive with pre-encoded requests (no
  client library on the hot path), and its own CPU is measured and printed, so a saturated generator shows;
- every phase runs for the same wall time, with VACUUM ANALYZE between phases;
- phases are interleaved (API, reference, API, reference...) and each figure is the median of the runs,
  printed with its range;
- the API and the references use the same number of database connections as there are requests in flight
  (RCM_DB_POOL_SIZE = concurrency for one API process, half each for two), as the app role under RLS;
- a reference can run in processes of its own, as many as the API side has (``drive_processes``), so
  two API processes are not set beside a reference confined to the generator's one process;
- all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from rcm.audit.events import RequestInfo
from rcm.config import APP_ROLE, Settings, app_database_url, async_url
from rcm.crypto.keyring import KeyStore
from rcm.crypto.provider import key_provider
from rcm.demo import SEEDER, seed_demo
from rcm.kit.db import create_engine, session_factory
from rcm.kit.migrations import upgrade_to_head
from rcm.kit.tenant import TenantId
from rcm.tenancy.jobs import job_tenant_scope
from rcm.tenancy.scope import TenantScope

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
API_TENANT = "sunrise-family-medicine"
TICKS = os.sysconf("SC_CLK_TCK")


def server_url() -> str:
    """RCM_DATABASE_URL (a local PostgreSQL) when set, otherwise the embedded one under .rcm/bench-pg."""
    if os.environ.get("RCM_DATABASE_URL"):
        return os.environ["RCM_DATABASE_URL"]
    from rcm.kit.embedded import start_embedded_postgres

    return start_embedded_postgres(ROOT / ".rcm" / "bench-pg")


@dataclass
class Database:
    admin: str  # the administrative URL of the scratch database
    app: str  # the same database as the app role (plain postgresql:// for asyncpg)
    data_dir: Path
    clients: dict[str, Any]  # the demo practices' API clients

    async def tenant_id(self, slug: str) -> Any:
        connection = await asyncpg.connect(self.admin)
        try:
            return await connection.fetchval("SELECT id FROM rcm.tenant WHERE slug = $1", slug)
        finally:
            await connection.close()

    def environment(self) -> dict[str, str]:
        """What a reference process (``drive_processes``) is given to reach this database."""
        return {
            "RCM_BENCH_ADMIN": self.admin,
            "RCM_BENCH_APP": self.app,
            "RCM_BENCH_DATA_DIR": str(self.data_dir),
        }

    @classmethod
    def from_environment(cls) -> Database:
        """In a reference process: the database its parent named (``environment``)."""
        return cls(
            admin=os.environ["RCM_BENCH_ADMIN"],
            app=os.environ["RCM_BENCH_APP"],
            data_dir=Path(os.environ["RCM_BENCH_DATA_DIR"]),
            clients={},
        )

    async def vacuum(self) -> None:
        """Between phases: dead tuples and stale statistics of one phase must not tax the next."""
        connection = await asyncpg.connect(self.admin)
        try:
            await connection.execute("VACUUM ANALYZE")
        finally:
            await connection.close()


async def scratch_database(name: str) -> Database:
    """Drop and create ``name``, migrate it, seed the demo practices."""
    server = server_url()
    engine = create_async_engine(async_url(server), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    admin = make_url(server).set(database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade_to_head, admin)
    data_dir = ROOT / ".rcm" / f"{name}-data"
    # The demo's sandbox payer reads RCM_ENV itself (connectors import no settings): dev, as in make run.
    os.environ.setdefault("RCM_ENV", "dev")
    await seed_demo(Settings(env="dev", database_url=admin, data_dir=data_dir))
    app = make_url(admin).set(username=APP_ROLE, password=None, drivername="postgresql")
    return Database(
        admin=make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False),
        app=app.render_as_string(hide_password=False),
        data_dir=data_dir,
        clients=json.loads((data_dir / "demo-clients.json").read_text()),
    )


@asynccontextmanager
async def seeder_scopes(
    settings: Settings, tenant_id: TenantId, job: str
) -> AsyncIterator[Callable[[], AbstractAsyncContextManager[TenantScope]]]:
    """For an untimed set-up through the service code: scopes of the demo seeder in one practice, each its
    own transaction, over an engine of the app role that is disposed of at the end."""
    engine = create_engine(app_database_url(settings), pool_size=2, application_name="bench")
    sessions = session_factory(engine)
    keystore = KeyStore(key_provider(settings))

    def scope() -> AbstractAsyncContextManager[TenantScope]:
        request = RequestInfo(request_id="bench", trace_id="")
        return job_tenant_scope(sessions, keystore, tenant_id, actor=SEEDER, request=request, job=job)

    try:
        yield scope
    finally:
        await engine.dispose()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def database_cpu_seconds() -> float:
    """CPU seconds (user and system) spent so far by the PostgreSQL processes of this machine: its live
    processes' own, and those of the backends that have exited (counted in their parent's children's
    time once reaped). The difference over a phase is the database's CPU in it, when nothing else uses the
    server then (it counts every database's work)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
        except OSError:  # gone meanwhile
            continue
        if head.partition("(")[2] == "postgres":
            total += sum(int(field) for field in rest.split()[11:15])  # utime, stime, cutime, cstime
    return total / TICKS


@dataclass
class ApiServers:
    """``rcm serve`` processes on consecutive ports, each with its share of the connections."""

    db: Database
    ports: list[int]
    pool_size: int
    base_url: str = f"http://{HOST}:8765"
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> ApiServers:
        env = {
            **os.environ,
            "RCM_ENV": "dev",
            "RCM_DATABASE_URL": self.db.admin,
            "RCM_DATA_DIR": str(self.db.data_dir),
            "RCM_DB_POOL_SIZE": str(self.pool_size),
            "RCM_RATE_LIMIT_PER_MINUTE": "100000000",
            "RCM_RATE_LIMIT_PER_IP_PER_MINUTE": "100000000",
            "RCM_LOG_LEVEL": "WARNING",
            # One issuer for every process, so a token from one is valid at all (as behind a balancer).
            "RCM_BASE_URL": self.base_url,
        }
        for port in self.ports:
            command = [sys.executable, "-m", "rcm.cli", "serve", "--host", HOST, "--port", str(port)]
            self.processes.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL))  # noqa: S603
        for port, process in zip(self.ports, self.processes, strict=True):
            _wait_ready(f"http://{HOST}:{port}", process)
        return self

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(p.pid) for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("an API process exited during start-up")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("the API did not become ready within 60 s")


def token(port: int, client: dict[str, str]) -> str:
    response = httpx.post(
        f"http://{HOST}:{port}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["client_id"], client["client_secret"]),
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def raw_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Connection:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length (ours do)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection(HOST, port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


@dataclass
class Phase:
    """One timed phase: its rate, latencies, and the CPU the generator and the servers spent."""

    rate: float
    latencies: list[float]
    generator_cpu: float  # share of one core the load generator used (this process, or reference processes)
    server_cpu_ms: float = 0.0  # server CPU per request, all API processes together


async def drive_http(
    servers: ApiServers, requests: Iterator[bytes], *, concurrency: int, seconds: float, expect: int
) -> Phase:
    """Keep ``concurrency`` requests in flight for ``seconds``, spread evenly over the API processes."""
    connections = [await Connection.open(servers.ports[i % len(servers.ports)]) for i in range(concurrency)]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(connection: Connection) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status, body = await connection.send(next(requests))
            if status != expect:
                raise SystemExit(f"API answered {status}: {body[:300]!r}")
            latencies.append(time.perf_counter() - started)

    cpu, server_cpu, started = time.process_time(), servers.cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    wall = time.perf_counter() - started
    cpu, server_cpu = time.process_time() - cpu, servers.cpu_seconds() - server_cpu
    for connection in connections:
        connection.close()
    return Phase(len(latencies) / wall, latencies, cpu / wall, server_cpu * 1000 / max(len(latencies), 1))


async def drive_pool(
    pool: asyncpg.Pool,
    one: Callable[[asyncpg.Connection, int], Awaitable[None]],
    *,
    concurrency: int,
    seconds: float,
) -> Phase:
    """The reference side: ``concurrency`` workers, each a pooled connection doing ``one`` per transaction."""
    latencies: list[float] = []
    counter = iter(range(10**9))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with pool.acquire() as conn, conn.transaction():
                await one(conn, next(counter))
            latencies.append(time.perf_counter() - started)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return Phase(len(latencies) / wall, latencies, (time.process_time() - cpu) / wall)


CHILD_START = 5.0  # seconds between spawning reference processes and their common start (imports, warm-up)


async def drive_processes(
    db: Database, script: Path, child: list[str], *, processes: int, concurrency: int, seconds: float
) -> Phase:
    """The reference side in ``processes`` processes of its own, as the API's side is: each a fresh run of
    ``script`` with ``child`` arguments (plus ``--start-at``, ``--seconds`` and its share of ``concurrency``,
    read by ``child_arguments``), which connects to ``db``, warms up and then drives from the same instant
    as the others (``child_phase``), printing its ``Phase`` as JSON. The phases are summed: rates and the
    generators' CPU added, latencies pooled."""
    start_at = time.time() + CHILD_START
    command = [sys.executable, str(script), *child, "--start-at", repr(start_at), "--seconds", str(seconds)]
    command += ["--concurrency", str(concurrency // processes)]
    environment = {**os.environ, **db.environment()}
    spawned = [
        await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, env=environment)
        for _ in range(processes)
    ]
    outputs = [await process.communicate() for process in spawned]
    phases = []
    for process, (out, _err) in zip(spawned, outputs, strict=True):
        if process.returncode != 0:
            raise SystemExit(f"a reference process exited with {process.returncode}")
        phases.append(json.loads(out.decode().strip().splitlines()[-1]))
    return Phase(
        sum(p["rate"] for p in phases),
        [x for p in phases for x in p["latencies"]],
        sum(p["generator_cpu"] for p in phases),
    )


def child_arguments(parser: argparse.ArgumentParser, kinds: tuple[str, ...], ids: tuple[str, ...]) -> None:
    """The hidden arguments a script takes when ``drive_processes`` runs it as a reference process: the
    reference's kind, the start, and the ids its parent passes (``--tenant`` and the like, as UUIDs); it
    takes ``--seconds`` and ``--concurrency`` already."""
    parser.add_argument("--reference-child", choices=kinds, help=argparse.SUPPRESS)
    for name in ids:
        parser.add_argument(f"--{name}", type=uuid.UUID, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)


async def child_phase(
    db: Database,
    work: Callable[[], Callable[[asyncpg.Connection, int], Awaitable[None]]],
    *,
    concurrency: int,
    start_at: float,
    seconds: float,
) -> None:
    """A reference process's side of ``drive_processes``: its own pool of ``concurrency`` connections, warmed
    up until ``start_at`` (prepared statements, key caches), then one timed ``drive_pool``, printed as one
    line of JSON. ``work`` gives the unit of work afresh for each (``drive_pool`` numbers its calls from 0
    each time: a reference writing keys from that number needs a new run for each)."""
    pool = await reference_pool(db, concurrency)
    try:
        warm_up = max(0.0, start_at - time.time() - 0.05)
        await drive_pool(pool, work(), concurrency=concurrency, seconds=warm_up)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        phase = await drive_pool(pool, work(), concurrency=concurrency, seconds=seconds)
    finally:
        await pool.close()
    print(
        json.dumps({"rate": phase.rate, "latencies": phase.latencies, "generator_cpu": phase.generator_cpu})
    )


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """The references' transaction ends every unit of work, as the API's does, so neither pays a reset
    query on release (asyncpg's default reset is a full round trip: a handicap the API does not carry)."""


async def reference_pool(db: Database, size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(db.app, min_size=size, max_size=size, reset=_no_reset)
    assert pool is not None
    return pool


@dataclass
class Series:
    label: str
    phases: list[Phase] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(p.rate for p in self.phases)

    def line(self, unit: str) -> str:
        rates = [p.rate for p in self.phases]
        latencies = sorted(x for p in self.phases for x in p.latencies)
        p50 = statistics.median(latencies) * 1000
        p95 = latencies[int(len(latencies) * 0.95) - 1] * 1000
        cpu = statistics.median(p.generator_cpu for p in self.phases) * 100
        server = statistics.median(p.server_cpu_ms for p in self.phases)
        extra = f"  server CPU {server:5.2f} ms/req" if server else ""
        return (
            f"{self.label:<52} {self.median:8.1f} {unit}  [{min(rates):.1f}-{max(rates):.1f}]"
            f"  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  generator CPU {cpu:3.0f}%{extra}"
        )


def report(
    title: str,
    unit: str,
    ours: list[Series],
    references: list[Series],
    pairs: list[tuple[Series, Series]] | None = None,
) -> None:
    """The series, then the ratio of each of ours to each reference (or only the ``pairs`` given: sides
    run in the same number of processes)."""
    print(f"\n{title}")
    for series in [*ours, *references]:
        print(series.line(unit))
    for mine, reference in pairs if pairs is not None else [(m, r) for m in ours for r in references]:
        print(
            f"ratio {mine.label.split(' (')[0]} / {reference.label.split(' (')[0]}: {mine.median / reference.median:.2f}"
        )
