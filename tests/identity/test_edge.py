"""Trust boundaries at the edge: forwarded headers believed only from configured proxies, security headers on
every response."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar
from pydantic import ValidationError

from rcm.app import create_app
from rcm.audit.events import AuditEvent
from rcm.config import Settings
from rcm.identity.principal import Role
from rcm.identity.testing import user_principal
from rcm.kit.edge import HSTS, forwarded_client
from tests.identity.conftest import Mint

PROTECTED = "/api/v1/admin/break-glass"
PROXY = ("10.0.0.5", 4711)  # the TCP peer: a load balancer in the private range
PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


def _scope(peer: str, *headers: tuple[str, str], scheme: str = "http") -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": scheme,
        "client": (peer, 1234),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # No trusted proxies configured (the default) is tested below with an empty tuple.
        ("203.0.113.7", [("X-Forwarded-For", "198.51.100.1")], None),  # peer is not a proxy: ignored
        ("10.0.0.5", [("X-Forwarded-For", "198.51.100.1")], ("198.51.100.1", "http")),
        # The client's own X-Forwarded-For is left of what our proxy appended: the proxy's word wins.
        ("10.0.0.5", [("X-Forwarded-For", "1.2.3.4, 198.51.100.1")], ("198.51.100.1", "http")),
        # Trusted hops are skipped from the right; the first untrusted address is the caller.
        ("10.0.0.5", [("X-Forwarded-For", "1.2.3.4, 198.51.100.1, 10.1.1.1")], ("198.51.100.1", "http")),
        # Two header lines count as one list, in order.
        (
            "10.0.0.5",
            [("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-For", "198.51.100.1")],
            ("198.51.100.1", "http"),
        ),
        # Garbage next to the proxy stops the walk at the last trusted hop, never at the garbage.
        ("10.0.0.5", [("X-Forwarded-For", "not-an-ip, 10.1.1.1")], ("10.1.1.1", "http")),
        ("10.0.0.5", [], ("10.0.0.5", "http")),
        (
            "10.0.0.5",
            [("X-Forwarded-For", "2001:db8::1"), ("X-Forwarded-Proto", "https")],
            ("2001:db8::1", "https"),
        ),
        ("10.0.0.5", [("X-Forwarded-Proto", "gopher")], ("10.0.0.5", "http")),
        ("not-an-ip", [("X-Forwarded-For", "198.51.100.1")], None),
    ],
)
def test_forwarded_client_believes_only_trusted_proxies(
    peer: str, headers: list[tuple[str, str]], expected: tuple[str, str] | None
) -> None:
    assert forwarded_client(_scope(peer, *headers), PROXIES) == expected
    # With no trusted proxies (the default) nothing is ever believed.
    assert forwarded_client(_scope(peer, *headers), ()) is None


@asynccontextmanager
async def _edge(
    settings: Settings, peer: tuple[str, int] = PROXY, **update: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app (lifespan running) called from ``peer``, as a real socket would show it."""
    app: Litestar = create_app(settings.model_copy(update=update))
    async with app.lifespan():  # engine, key store, windows, on this test's event loop
        transport = httpx.ASGITransport(app=app, client=peer)
        async with httpx.AsyncClient(transport=transport, base_url="http://rcm.test") as client:
            yield client


def _sources(audit_log: list[AuditEvent]) -> list[str | None]:
    return [event.request.source_ip for event in audit_log if event.event_type == "access.denied"]


async def test_forwarded_for_cannot_forge_the_audit_source_by_default(
    settings: Settings, audit_log: list[AuditEvent]
) -> None:
    async with _edge(settings) as client:
        denied = await client.get(PROTECTED, headers={"X-Forwarded-For": "198.51.100.1"})
    assert denied.status_code == 401
    assert _sources(audit_log) == ["10.0.0.5"]


async def test_a_trusted_proxy_names_the_caller_in_the_audit_trail(
    settings: Settings, audit_log: list[AuditEvent]
) -> None:
    async with _edge(settings, trusted_proxies=PROXIES) as client:
        denied = await client.get(PROTECTED, headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.1"})
    assert denied.status_code == 401
    assert _sources(audit_log) == ["198.51.100.1"]


async def test_forwarded_for_cannot_dodge_the_per_address_limit(settings: Settings) -> None:
    async with _edge(settings, rate_limit_per_ip_per_minute=2) as client:
        statuses = [
            (await client.get(PROTECTED, headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
            for n in range(3)
        ]
    assert statuses == [401, 401, 429]


async def test_behind_a_trusted_proxy_each_caller_has_its_own_window(settings: Settings) -> None:
    async with _edge(settings, rate_limit_per_ip_per_minute=2, trusted_proxies=PROXIES) as client:
        first = [
            (await client.get(PROTECTED, headers={"X-Forwarded-For": "198.51.100.1"})).status_code
            for _ in range(3)
        ]
        other = await client.get(PROTECTED, headers={"X-Forwarded-For": "198.51.100.2"})
    assert first == [401, 401, 429]
    assert other.status_code == 401


def _assert_secure(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.url
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "server" not in headers
    assert headers["x-request-id"]


async def test_every_response_carries_the_security_headers(settings: Settings, mint: Mint) -> None:
    token = await mint(user_principal(Role.ADMIN, mfa=True))
    # Six requests reach a route (an unknown path is answered before any middleware runs).
    async with _edge(settings, rate_limit_per_ip_per_minute=5) as client:
        responses = [
            await client.get(
                PROTECTED, headers={"Authorization": f"Bearer {token}"}
            ),  # 200 with PHI-adjacent data
            await client.get(PROTECTED),  # 401 from authentication
            await client.get("/api/v1/no-such-route"),  # 404 from routing
            await client.post("/oauth/token", data={"grant_type": "client_credentials"}),  # RFC 6749 error
            await client.get("/docs"),  # the docs page
            await client.get("/.well-known/jwks.json"),
            await client.get(PROTECTED),  # 429 from the per-address limit
        ]
    assert [r.status_code for r in responses] == [200, 401, 404, 401, 200, 200, 429]
    for response in responses:
        _assert_secure(response)
        # Plain HTTP from a peer that is not a trusted proxy: no HSTS (it would be a lie).
        assert "strict-transport-security" not in response.headers
    for response in responses[:4] + responses[6:]:
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
    # The JWKS is public key material and says it may be cached; nothing else does.
    assert responses[5].headers["cache-control"] == "public, max-age=60"


async def test_hsts_over_tls_and_from_a_trusted_proxy_only(settings: Settings) -> None:
    async with _edge(settings, trusted_proxies=PROXIES) as client:
        via_proxy = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    async with _edge(settings) as client:
        forged = await client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        direct_tls = await client.get("https://rcm.test/healthz")
    assert via_proxy.headers["strict-transport-security"] == HSTS
    assert direct_tls.headers["strict-transport-security"] == HSTS
    assert "strict-transport-security" not in forged.headers


def test_trusted_proxies_setting_takes_addresses_and_cidrs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCM_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,2001:db8::/32")
    assert Settings().trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.0.2.7/32"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    monkeypatch.setenv("RCM_TRUSTED_PROXIES", "10.0.0.0/8, not-a-network")
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings()
    monkeypatch.delenv("RCM_TRUSTED_PROXIES")
    assert Settings().trusted_proxies == ()
