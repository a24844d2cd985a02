"""The request path stays lean and clean: round trips per request, caches that still honour changes
within seconds, and pooled connections that carry nothing from one request to the next."""

from __future__ import annotations

import time
import uuid

from litestar import Litestar
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings, app_database_url
from rcm.identity.keys import KeyRing
from rcm.identity.testing import client_principal, mint_access_token
from rcm.identity.tokens import InvalidToken, VerifiedTokens
from rcm.kit.db import (
    RoundTrips,
    apply_tenant_context,
    create_engine,
    platform_transaction,
    session_factory,
    tenant_transaction,
)
from rcm.kit.tenant import TenantContext, TenantId
from rcm.tenancy.cache import TenantCache, tenants_changed
from rcm.tenancy.models import Tenant
from tests.support import Api, encounter_payload

Sessions = async_sessionmaker[AsyncSession]

# Today's counts (statements + BEGIN/COMMIT). Intake: BEGIN, bind the tenant, reserve the Idempotency-Key,
# look up everything the encounter refers to (one statement), write every row with the audit events and the
# stored response (one statement), COMMIT.
MAX_INTAKE_ROUND_TRIPS = 6
MAX_LIST_ROUND_TRIPS = 4  # BEGIN, bind the tenant, SELECT with its audit event INSERTed alongside, COMMIT


async def test_round_trips_per_intake_and_per_list_read(app: Litestar, practice_api: Api) -> None:
    # Warm what a running server has warm: caller status, tenant row, the tenant's keys (cached once read
    # from committed rows), the practice's providers (created by the first encounter), compiled statements.
    for _ in range(2):
        first = await practice_api.post("/encounters", encounter_payload())
        assert first.status_code == 201, first.text
    assert (await practice_api.get("/patients")).status_code == 200
    with RoundTrips(app.state.engine) as counter:
        created = await practice_api.post("/encounters", encounter_payload())
        assert created.status_code == 201, created.text
        intake = counter.round_trips
        intake_compiled = list(counter.compiled)
        counter.reset()
        listed = await practice_api.get("/patients?limit=100")
        assert listed.status_code == 200
        reads = counter.round_trips
        statements = list(counter.statements)
        on_driver = counter.driver_statements
        read_compiled = list(counter.compiled)
    print(f"\nround trips: intake {intake}, list read {reads}")
    assert intake <= MAX_INTAKE_ROUND_TRIPS
    assert reads <= MAX_LIST_ROUND_TRIPS
    # Every statement came from SQLAlchemy's compiled cache (a multi-row VALUES or an ON CONFLICT clause
    # cannot be cached, and compiling it costs more than a round trip).
    assert intake_compiled == []
    assert read_compiled == []
    assert not any("FROM rcm.tenant " in s for s in statements)  # the tenant row came from the cache
    assert sum("set_config" in s for s in statements) == 1
    assert statements[0] == "BEGIN"
    assert "$1" in statements[1]  # the binding: a bound parameter
    # The practice's own system in its own practice, all cached: the whole unit of work ran on the driver,
    # no session (``provide_tenant_read``).
    assert on_driver == len(statements)


async def test_an_intake_with_everything_by_id_takes_the_same_round_trips(
    app: Litestar, practice_api: Api
) -> None:
    """Patient, coverage and providers by id: the same two statements (lookups, writes), none compiled."""
    first = await practice_api.post("/encounters", encounter_payload())
    assert first.status_code == 201, first.text
    body = first.json()
    by_id = encounter_payload(
        patient=None,
        patient_id=body["patient_id"],
        coverage=None,
        coverage_id=body["coverage_id"],
        rendering_provider=None,
        rendering_provider_id=body["rendering_provider_id"],
        billing_provider_id=body["billing_provider_id"],
    )
    assert (
        await practice_api.post("/encounters", by_id | {"external_id": "ENC-warm-" + body["id"][:8]})
    ).status_code == 201
    with RoundTrips(app.state.engine) as counter:
        created = await practice_api.post("/encounters", by_id)
        assert created.status_code == 201, created.text
    assert counter.round_trips <= MAX_INTAKE_ROUND_TRIPS
    assert counter.compiled == []
    assert created.json()["patient_id"] == body["patient_id"]
    assert created.json()["coverage_id"] == body["coverage_id"]


async def test_tenant_lookup_binds_in_the_same_statement(sessions: Sessions, tenant: Tenant) -> None:
    cache = TenantCache(5)
    async with sessions() as session, session.begin():
        lookup = await cache.by_slug(session, tenant.slug)
        bound = (await session.execute(text("SELECT current_setting('rcm.tenant_id', true)"))).scalar_one()
    assert lookup.bound
    assert lookup.tenant is not None
    assert bound == str(tenant.id)
    async with sessions() as session, session.begin():
        again = await cache.by_slug(session, tenant.slug)  # from the cache: nothing bound, nothing read
        unbound = (await session.execute(text("SELECT current_setting('rcm.tenant_id', true)"))).scalar_one()
        unknown = await cache.by_slug(session, f"no-such-{uuid.uuid4().hex[:8]}")
    assert again.tenant == lookup.tenant
    assert not again.bound
    assert unbound in ("", None)
    assert unknown.tenant is None
    assert not unknown.bound


async def test_tenant_status_change_applies_within_the_ttl(
    sessions: Sessions, control_sessions: Sessions, tenant: Tenant
) -> None:
    now = [1000.0]
    cache = TenantCache(5, clock=lambda: now[0])
    async with sessions() as session, session.begin():
        assert (await cache.by_slug(session, tenant.slug)).tenant.status == "active"  # type: ignore[union-attr]
    async with platform_transaction(control_sessions) as session:  # only the control role writes tenants
        await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(status="suspended"))
    async with sessions() as session, session.begin():
        now[0] += 4
        assert (await cache.by_slug(session, tenant.slug)).tenant.status == "active"  # type: ignore[union-attr]
        now[0] += 2  # past the TTL: reloaded
        assert (await cache.by_slug(session, tenant.slug)).tenant.status == "suspended"  # type: ignore[union-attr]
    async with platform_transaction(control_sessions) as session:  # only the control role writes tenants
        await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(status="active"))
    tenants_changed()  # an in-process change applies at once
    async with sessions() as session, session.begin():
        assert (await cache.by_slug(session, tenant.slug)).tenant.status == "active"  # type: ignore[union-attr]


async def test_suspended_tenant_is_refused_through_the_api_once_the_cache_reloads(
    app: Litestar, practice_api: Api, control_sessions: Sessions, tenant: Tenant
) -> None:
    assert (await practice_api.get("/patients")).status_code == 200  # cached as active
    async with platform_transaction(control_sessions) as session:  # only the control role writes tenants
        await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(status="suspended"))
    tenants_changed()  # stands for the TTL passing (tested above with a clock)
    assert (await practice_api.get("/patients")).status_code == 404


async def test_verified_tokens_answer_only_for_the_same_keys_and_until_exp(
    sessions: Sessions, settings: Settings, tenant: Tenant
) -> None:
    token = await mint_access_token(client_principal(tenant.id), sessions=sessions, settings=settings)
    keyring = KeyRing(settings)
    keys = await keyring.verification_keys(sessions)
    now = [time.time()]
    verified = VerifiedTokens(clock=lambda: now[0])
    first = verified.verify(token, keys, settings)
    assert verified.verify(token, keys, settings) is first  # remembered
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    try:
        verified.verify(tampered, keys, settings)
        raise AssertionError("a tampered token verified")
    except InvalidToken:
        pass
    keyring.invalidate()
    reloaded = await keyring.verification_keys(sessions)
    assert reloaded is not keys
    assert verified.verify(token, reloaded, settings) is not first  # a reload forgets what was verified
    now[0] += 2 * 24 * 3600  # past exp: verified afresh, and refused
    try:
        verified.verify(token, reloaded, settings)
        raise AssertionError("an expired token was answered from the cache")
    except InvalidToken:
        pass


async def test_pooled_connections_carry_no_tenant_or_role_between_units_of_work(
    settings: Settings, tenant: Tenant
) -> None:
    """One connection, reused: what one transaction bound (tenant context, role) is gone in the next, after
    a commit, after a rollback and after an error."""
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-tests-reuse")
    sessions = session_factory(engine)
    probe = text("SELECT pg_backend_pid(), current_setting('rcm.tenant_id', true), current_user")
    try:
        async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
            pid, bound, role = (await session.execute(probe)).one()
            assert bound == str(tenant.id)
        async with sessions() as session, session.begin():
            after_commit = (await session.execute(probe)).one()
        try:
            async with tenant_transaction(sessions, TenantContext.single(TenantId(tenant.id))) as session:
                await session.execute(text("SELECT 1/0"))
        except Exception:  # noqa: S110 - the failure is the point
            pass
        async with sessions() as session, session.begin():
            after_error = (await session.execute(probe)).one()
    finally:
        await engine.dispose()
    for reused in (after_commit, after_error):
        assert reused[0] == pid  # the same pooled connection
        assert reused[1] in ("", None)  # no tenant carried over
        assert reused[2] == role  # still the app role


async def test_the_binding_goes_with_begin_and_later_on_its_own(
    settings: Settings, tenant: Tenant, other_tenant: Tenant
) -> None:
    """The binding, first in a transaction or later in it (a decision that narrows or clears the context),
    is a statement of its own with a bound parameter. Either way it is the transaction's setting
    (what the RLS policies read), and it is gone with the transaction."""
    engine = create_engine(app_database_url(settings), pool_size=1, application_name="rcm-tests-binding")
    sessions = session_factory(engine)
    probe = text("SELECT current_setting('rcm.tenant_id', true)")
    both = TenantContext.system_cross_tenant((TenantId(tenant.id), TenantId(other_tenant.id)))
    try:
        with RoundTrips(engine) as counter:
            async with sessions() as session, session.begin():
                await apply_tenant_context(session, both)
                first = (await session.execute(probe)).scalar_one()
                await apply_tenant_context(session, TenantContext(()))
                cleared = (await session.execute(probe)).scalar_one()
        assert counter.round_trips == 6  # BEGIN, binding, probe, binding, probe, COMMIT
        assert all("$1" in s for s in counter.statements if "set_config" in s)
        assert first == both.as_setting()
        assert cleared == ""
        async with sessions() as session, session.begin():
            after = (await session.execute(probe)).scalar_one()
        assert after in ("", None)
    finally:
        await engine.dispose()
