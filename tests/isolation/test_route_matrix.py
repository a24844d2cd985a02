"""The cross-tenant matrix, generated from the app's own route table.

Every route and method is called by tenant A's caller against tenant B's path and B's ids, and against A's
path with B's ids: zero successes, one identical 404 body (but for the trace id), one denial audit event per
call, and B's rows unchanged. Every route also refuses an anonymous caller unless it is on the allow-list.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.middleware import PAGE_OPT_KEY
from rcm.identity.principal import Role
from rcm.identity.testing import mint_access_token, user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from rcm.tenancy.service import assign_staff
from tests.identity.conftest import make_user
from tests.isolation import catalog
from tests.support import Api, encounter_payload, patient_payload
from tests.web.support import BrowserSession, browser_login

# Routes anyone may call: health, API docs, the OAuth2 endpoints, the dev issuer, the FHIR
# CapabilityStatement (FHIR clients read /metadata before they authenticate), the browser login's own
# routes and the stylesheet.
PUBLIC = re.compile(
    r"^/(healthz|readyz|docs|swagger|oauth/|\.well-known/|dev/oidc/|fhir/r4/metadata$|login$|auth/callback$|static/)"
)
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def http_routes(app: Litestar) -> list[tuple[str, str]]:
    pairs = []
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for method in sorted(route.methods):
                if method not in ("HEAD", "OPTIONS"):
                    pairs.append((route.path, method))
    return sorted(set(pairs))


def is_page_route(app: Litestar, path: str, method: str) -> bool:
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path == path and method in route.route_handler_map:
            return bool(route.route_handler_map[method][0].opt.get(PAGE_OPT_KEY))
    return False


def fill(path: str, values: dict[str, str]) -> str:
    return PARAM.sub(lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


# A valid body for each kind of write route, by the path's last segment (others take an empty object).
BODIES: dict[str, Any] = {
    "encounters": encounter_payload,
    "patients": patient_payload,
    "coverages": lambda: {"payer_id": "DEMO-MCR", "member_id": "ZZ999"},
    "providers": lambda: {"npi": "1003000126", "name": "Dr Matrix Fake"},
    "cancel": lambda: {"reason": "duplicate"},
    "answer": lambda: {"answer": "Matrix answer"},
    "close": lambda: {"month": "2026-01"},
    "views": lambda: {"name": "Matrix view", "report": "dashboard", "parameters": {}},
    "payments": lambda: {"amount_cents": 100, "method": "cash"},
    "subscriptions": lambda: {
        "url": "https://hooks.example.test/rcm",
        "event_types": ["claim.status_changed"],
    },
}


def body_for(path: str) -> dict[str, Any]:
    make = BODIES.get(path.rstrip("/").rsplit("/", 1)[-1])
    return make() if make is not None else {}


# The one change the matrix makes to B's rows: its audit trail records each refused attempt on B's data
# (each counted above as one denial event). Every other row of B, in every table, stays as it was.
EXPECTED_CHANGES = {"audit_event": "event_type <> 'access.denied'"}


async def _snapshot(owner_engine: AsyncEngine, tenant_id: uuid.UUID) -> dict[str, list[str]]:
    """Every row of ``tenant_id`` in every tenant-owned table the catalog knows (new tables included)."""
    snap = {}
    async with owner_engine.connect() as conn:
        for table in await catalog.tenant_owned_tables(conn):
            where = f" AND {EXPECTED_CHANGES[table]}" if table in EXPECTED_CHANGES else ""
            rows = await conn.execute(
                text(f"SELECT * FROM rcm.{table} WHERE tenant_id = :t{where}"),  # noqa: S608 - constant names
                {"t": tenant_id},
            )
            snap[table] = sorted(repr(tuple(r)) for r in rows)
    return snap


async def _denials(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM rcm.audit_event WHERE event_type = 'access.denied'")
                )
            ).scalar_one()
        )


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "trace_id"}


async def test_every_route_needs_authentication(app: Litestar, client: AsyncTestClient[Litestar]) -> None:
    checked = 0
    for path, method in http_routes(app):
        if PUBLIC.match(path):
            continue
        url = fill(path, {"tenant_slug": "anything"})
        response = await client.request(method, url, json={}, follow_redirects=False)
        if is_page_route(app, path, method):
            # A page sends an anonymous browser to the login page, to come back here afterwards.
            assert response.status_code == 303, f"{method} {path} answered {response.status_code}"
            assert response.headers["location"].startswith("/login?next="), f"{method} {path}"
        else:
            assert response.status_code == 401, (
                f"{method} {path} answered {response.status_code} without a token"
            )
        checked += 1
    assert checked >= 10


class CookieApi(Api):
    """A signed-in browser of the same person: the session cookie and its CSRF token instead of a Bearer."""

    def __init__(self, browser: BrowserSession, slug: str, *, tenant_id: str) -> None:
        super().__init__(browser.client, "", slug, tenant_id=tenant_id)
        self.browser = browser

    @property
    def headers(self) -> dict[str, str]:
        return self.browser.headers()


@pytest.fixture(params=["practice_client", "coder", "practice_owner", "practice_owner_cookie"])
async def caller(
    *,
    request: pytest.FixtureRequest,
    practice_api: Api,
    tenant: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    control_sessions: async_sessionmaker[AsyncSession],
) -> Api:
    """Tenant A's callers: its own system, a coder assigned to A (only), and A's owner (with a Bearer token,
    and signed in with a browser session cookie)."""
    if request.param == "practice_client":
        return practice_api
    if request.param == "practice_owner_cookie":
        owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
        browser = await browser_login(practice_api.client, owner.email)
        return CookieApi(browser, tenant.slug, tenant_id=str(tenant.id))
    if request.param == "coder":
        user = await make_user(control_sessions, ["coder"])
        async with platform_transaction(control_sessions) as session:
            await assign_staff(session, TenantId(tenant.id), [user.email])
        principal = user_principal(Role.CODER, user_id=user.id)
    else:
        principal = user_principal(Role.PRACTICE_OWNER, home_tenant=tenant.id)
    token = await mint_access_token(principal, sessions=sessions, settings=settings)
    return Api(practice_api.client, token, tenant.slug, tenant_id=str(tenant.id))


async def test_cross_tenant_matrix(
    app: Litestar, caller: Api, other_practice_api: Api, owner_engine: AsyncEngine
) -> None:
    practice_api = caller
    # Tenant B's data, made through the API by B's own caller.
    enc = (await other_practice_api.post("/encounters", encounter_payload())).json()
    coverages = (await other_practice_api.get(f"/patients/{enc['patient_id']}/coverages")).json()
    b_ids = {
        "patient_id": enc["patient_id"],
        "encounter_id": enc["id"],
        "provider_id": enc["rendering_provider_id"],
        "coverage_id": coverages[0]["id"],
    }
    b_tenant = uuid.UUID(other_practice_api.tenant_id)
    before = await _snapshot(owner_engine, b_tenant)
    assert all(before[table] for table in ("patient", "encounter", "charge_line"))

    # Opening break-glass is the one route meant to reach a tenant outside one's assignments; it has its own
    # tests (tests/identity/test_break_glass.py); approve, revoke and the owner's list are checked here.
    tenant_routes = [
        (p, m)
        for p, m in http_routes(app)
        if p.startswith("/api/v1/tenants/{tenant_slug") and not (p.endswith("/break-glass") and m == "POST")
    ]
    assert len(tenant_routes) >= 12
    reference: dict[str, Any] | None = None
    calls = 0
    for path, method in tenant_routes:
        slugs = [other_practice_api.slug]
        if len(PARAM.findall(path)) > 1:
            slugs.append(practice_api.slug)  # my own tenant's path, the other tenant's ids
        for slug in slugs:
            denials = await _denials(owner_engine)
            url = fill(path, {"tenant_slug": slug, **b_ids})
            headers = {**practice_api.headers, "Idempotency-Key": uuid.uuid4().hex}
            response = await practice_api.client.request(
                method, url, json=body_for(path) if method == "POST" else None, headers=headers
            )
            calls += 1
            assert await _denials(owner_engine) == denials + 1, f"{method} {url}: no denial audit event"
            if response.status_code == 403:
                # A route this caller's role may not use at all: it must say the same for its own tenant, so
                # the answer tells nothing about the other one.
                own = await practice_api.client.request(
                    method,
                    fill(path, {"tenant_slug": practice_api.slug}),
                    json=body_for(path),
                    headers=headers,
                )
                assert own.status_code == 403, f"{method} {url}: 403 only for the other tenant"
                assert _strip(own.json()) == _strip(response.json())
                continue
            assert response.status_code == 404, f"{method} {url}: {response.status_code} {response.text}"
            body = _strip(response.json())
            reference = reference or body
            assert body == reference, f"{method} {url}: 404 body differs"
            assert response.json()["trace_id"]
    assert calls >= len(tenant_routes)
    after = await _snapshot(owner_engine, b_tenant)
    assert {t: rows for t, rows in after.items() if rows != before[t]} == {}


async def test_cross_tenant_pages(
    app: Litestar, caller: Api, other_practice_api: Api, owner_engine: AsyncEngine
) -> None:
    """Every page under a practice (``/app/t/{tenant_slug}...``), opened by A's callers with B's slug: the
    same 404 page (or the 403 their role gets on their own practice too), and one denial event per call."""
    pages = [(p, m) for p, m in http_routes(app) if p.startswith("/app/t/{tenant_slug") and m == "GET"]
    assert pages
    reference: str | None = None
    for path, method in pages:
        denials = await _denials(owner_engine)
        url = fill(path, {"tenant_slug": other_practice_api.slug})
        response = await caller.client.request(method, url, headers=caller.headers, follow_redirects=False)
        assert await _denials(owner_engine) == denials + 1, f"{method} {url}: no denial audit event"
        if response.status_code == 403:
            own = await caller.client.request(
                method,
                fill(path, {"tenant_slug": caller.slug}),
                headers=caller.headers,
                follow_redirects=False,
            )
            assert own.status_code == 403, f"{method} {url}: 403 only for the other tenant"
            continue
        assert response.status_code == 404, f"{method} {url}: {response.status_code} {response.text}"
        assert other_practice_api.slug not in response.text
        reference = reference or response.text
        assert response.text == reference, f"{method} {url}: 404 page differs"


async def test_admin_routes_refuse_tenant_callers(
    app: Litestar, caller: Api, owner_engine: AsyncEngine
) -> None:
    """Platform administration is not a tenant's: each of tenant A's callers gets the same 403 on every admin
    route, for A's own slug and ids as for anything else, and each refusal is audited."""
    admin_routes = [(p, m) for p, m in http_routes(app) if p.startswith("/api/v1/admin")]
    assert len(admin_routes) >= 8
    reference: dict[str, Any] | None = None
    for path, method in admin_routes:
        denials = await _denials(owner_engine)
        url = fill(path, {"slug": caller.slug, "tenant_slug": caller.slug})
        headers = {**caller.headers, "Idempotency-Key": uuid.uuid4().hex}
        response = await caller.client.request(
            method, url, json={} if method == "POST" else None, headers=headers
        )
        assert response.status_code == 403, f"{method} {url}: {response.status_code} {response.text}"
        assert await _denials(owner_engine) == denials + 1, f"{method} {url}: no denial audit event"
        body = _strip(response.json())
        reference = reference or body
        assert body == reference, f"{method} {url}: 403 body differs"
