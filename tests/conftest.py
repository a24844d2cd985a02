"""Test harness: a real PostgreSQL, migrated to head with Alembic once per run, two fresh tenants per test.

RCM_TEST_DATABASE_URL names an administrative URL (CI: the local server). Without it an embedded server from
the pgserver wheel starts under .rcm/pgtest. Either way a database private to this checkout is recreated.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from rcm.app import create_app
from rcm.config import Settings, app_database_url, async_url, control_database_url
from rcm.identity.testing import client_principal, mint_access_token
from rcm.kit.db import create_engine, platform_transaction, session_factory
from rcm.kit.migrations import upgrade_to_head
from rcm.kit.tenant import TenantId
from rcm.tenancy.manifest import validate_manifest
from rcm.tenancy.models import Tenant
from tests.support import Api, Cli

ROOT = Path(__file__).resolve().parents[1]


def _server_url() -> str:
    url = os.environ.get("RCM_TEST_DATABASE_URL")
    if url:
        return url
    from rcm.kit.embedded import start_embedded_postgres

    return start_embedded_postgres(ROOT / ".rcm" / "pgtest")


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """Superuser URL of a database created for this run (and dropped before the next one)."""
    import asyncio

    server = _server_url()
    name = "rcm_test_" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]

    async def recreate() -> None:
        engine = create_async_engine(async_url(server), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    asyncio.run(recreate())
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    upgrade_to_head(url)
    return url


@pytest.fixture(scope="session")
def settings(admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data_dir = tmp_path_factory.mktemp("rcm-data")
    return Settings(
        env="test",
        database_url=admin_url,
        data_dir=data_dir,
        rate_limit_per_minute=100_000,
        rate_limit_per_ip_per_minute=1_000_000,
        trace_sql=True,
    )


@pytest.fixture(scope="session")
async def app_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(app_database_url(settings), pool_size=5, application_name="rcm-tests")
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(app_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(app_engine)


@pytest.fixture(scope="session")
async def control_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The control role (``rcm_control``): what admin routes and operator commands write people and clients
    with. Tests make their people, assignments and API clients through it, as the platform would."""
    engine = create_engine(control_database_url(settings), pool_size=2, application_name="rcm-tests-control")
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def control_sessions(control_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(control_engine)


@pytest.fixture(scope="session")
async def owner_engine(admin_url: str) -> AsyncIterator[AsyncEngine]:
    """The superuser connection, for looking beneath the app role (never used by the code under test)."""
    engine = create_async_engine(async_url(admin_url), poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.fixture
def cli(admin_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``await cli("remit", "release", ...)``: the ``rcm`` command as the operator runs it (``Cli``)."""
    return Cli(monkeypatch, admin_url, settings.data_dir)


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


async def make_tenant(control: async_sessionmaker[AsyncSession], label: str, **settings: Any) -> Tenant:
    """A practice, written as the control role (the only one that may write ``tenant``); ``settings`` are
    further manifest keys (``claim_type="institutional"``...)."""
    slug = f"{label}-{uuid.uuid4().hex[:10]}"
    async with platform_transaction(control) as session:
        manifest = validate_manifest(
            {
                "slug": slug,
                "name": f"Test practice {label}",
                "billing_provider": {"npi": "1003000126", "name": "Test Group Practice"},
                "payers": [{"payer_id": "DEMO-MCR", "name": "Demo Medicare"}],
                **settings,
            }
        )
        tenant = Tenant(id=uuid.uuid4(), slug=slug, name=f"Test practice {label}", manifest=manifest)
        session.add(tenant)
    return tenant


@pytest.fixture
async def tenant(control_sessions: async_sessionmaker[AsyncSession]) -> Tenant:
    return await make_tenant(control_sessions, "a")


@pytest.fixture
async def other_tenant(control_sessions: async_sessionmaker[AsyncSession]) -> Tenant:
    """The tenant next door: every test has one, and nothing of it may ever leak."""
    return await make_tenant(control_sessions, "b")


def tid(tenant: Tenant) -> TenantId:
    return TenantId(tenant.id)


async def practice_api_for(
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    """A practice system's API client for ``tenant``, with a real access token from the active signing key."""
    token = await mint_access_token(
        client_principal(TenantId(tenant.id)), sessions=sessions, settings=settings
    )
    return Api(client, token, tenant.slug, tenant_id=str(tenant.id))


@pytest.fixture
async def practice_api(
    client: AsyncTestClient[Litestar],
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    return await practice_api_for(client, tenant, sessions, settings)


@pytest.fixture
async def institutional_practice_api(
    client: AsyncTestClient[Litestar],
    control_sessions: async_sessionmaker[AsyncSession],
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    """The system of a practice whose manifest bills its encounters on the 837I."""
    tenant = await make_tenant(control_sessions, "inst", claim_type="institutional")
    return await practice_api_for(client, tenant, sessions, settings)


@pytest.fixture
async def other_practice_api(
    client: AsyncTestClient[Litestar],
    other_tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> Api:
    return await practice_api_for(client, other_tenant, sessions, settings)


REDIS_URL = os.environ.get("RCM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis (rate windows, circuit breakers); its tests skip, saying why, where none answers."""
    client = SyncRedis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        pytest.skip(f"no Redis answers at RCM_TEST_REDIS_URL={REDIS_URL} ({type(exc).__name__})")
    finally:
        client.close()
    return REDIS_URL
