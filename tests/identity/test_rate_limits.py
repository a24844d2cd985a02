"""Rate limits: per source address before authentication (everything), per caller after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.testing import AsyncTestClient

from rcm.app import create_app
from rcm.audit.events import AuditEvent
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from tests.identity.conftest import Mint

Client = AsyncTestClient[Litestar]
PROTECTED = "/api/v1/admin/break-glass"


@asynccontextmanager
async def _limited(settings: Settings, **limits: int) -> AsyncIterator[Client]:
    """A client of an app of its own (fresh in-memory windows) with these limits."""
    async with AsyncTestClient(app=create_app(settings.model_copy(update=limits))) as test_client:
        yield test_client


async def test_anonymous_callers_are_limited_per_address_before_authentication(
    settings: Settings, audit_log: list[AuditEvent]
) -> None:
    async with _limited(settings, rate_limit_per_ip_per_minute=3) as client:
        for _ in range(3):
            assert (await client.get(PROTECTED)).status_code == 401
        assert len(audit_log) == 3  # each 401 writes an access.denied row...

        refused = await client.get(PROTECTED)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert refused.headers["content-type"].startswith("application/problem+json")
        # ...the limiter stops the flood before authentication: no row for refused requests.
        token = await client.post("/oauth/token", data={"grant_type": "client_credentials"})
        assert token.status_code == 429
        assert "retry-after" in token.headers
        dev_login = await client.post("/dev/oidc/login", json={"email": "x@test.invalid"})
        assert dev_login.status_code == 429
        assert (await client.get("/.well-known/jwks.json")).status_code == 429
        assert len(audit_log) == 3


async def test_authenticated_callers_keep_their_own_window(settings: Settings, mint: Mint) -> None:
    limits = {"rate_limit_per_ip_per_minute": 100, "rate_limit_per_minute": 2}
    async with _limited(settings, **limits) as client:
        first = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}
        second = {"Authorization": f"Bearer {await mint(user_principal(Role.ADMIN, mfa=True))}"}
        ok = await client.get(PROTECTED, headers=first)
        assert ok.status_code == 200
        # Successful responses show the caller's window, not the address's.
        assert ok.headers["ratelimit-limit"] == "2"
        assert (await client.get(PROTECTED, headers=first)).status_code == 200
        limited = await client.get(PROTECTED, headers=first)
        assert limited.status_code == 429
        assert "retry-after" in limited.headers
        assert (await client.get(PROTECTED, headers=second)).status_code == 200
