"""People from a configured external OIDC issuer: its JWKS is fetched over real HTTP and its ID token is
exchanged (RFC 7523 jwt-bearer) for our access token, with roles from our own table."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity import audit_hooks
from rcm.identity.keys import KeyRing
from rcm.identity.principal import Role
from rcm.identity.server import JWT_BEARER, TokenService
from rcm.identity.tokens import verify_access_token
from rcm.kit.db import platform_transaction
from rcm.tenancy.models import AppUser

ISSUER = "https://idp.test.invalid/realms/billing"
AUDIENCE = "rcm-web"


@pytest.fixture(scope="module")
def idp_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "idp-1", "use": "sig", "alg": "ES256"})


@pytest.fixture(scope="module")
def jwks_url(idp_key: ECKey) -> Iterator[str]:
    body = json.dumps({"keys": [idp_key.as_dict(private=False)]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/jwks" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if self.path == "/jwks" else b"{}")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks"
    server.shutdown()


def _id_token(key: ECKey, *, audience: str = AUDIENCE, subject: str, amr: list[str]) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": audience, "sub": subject, "iat": now, "exp": now + 300, "amr": amr}
    return jwt.encode({"alg": "ES256", "kid": "idp-1"}, claims, key)


async def test_external_issuer_login(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    control_sessions: async_sessionmaker[AsyncSession],
    idp_key: ECKey,
    jwks_url: str,
) -> None:
    configured = settings.model_copy(
        update={"oidc_issuers": json.dumps([{"issuer": ISSUER, "audience": AUDIENCE, "jwks_uri": jwks_url}])}
    )
    subject = f"ext-{uuid.uuid4().hex[:8]}"
    async with platform_transaction(control_sessions) as session:
        session.add(
            AppUser(
                id=uuid.uuid4(),
                issuer=ISSUER,
                subject=subject,
                email=f"{subject}@billing.test.invalid",
                display_name="External biller",
                roles=["biller"],
            )
        )
    service = TokenService(configured, KeyRing(configured))

    async def exchange(assertion: str) -> Any:
        form = {"grant_type": JWT_BEARER, "assertion": assertion}
        return await service.exchange(sessions, form, {}, request=audit_hooks.request_info(None))

    granted = await exchange(_id_token(idp_key, subject=subject, amr=["pwd", "otp"]))
    assert granted.status == 200, granted.body
    keys = await KeyRing(configured).verification_keys(sessions)
    principal = verify_access_token(granted.body["access_token"], keys, configured)
    assert principal.roles == frozenset({Role.BILLER})
    assert principal.mfa

    wrong_audience = await exchange(_id_token(idp_key, audience="someone-else", subject=subject, amr=["pwd"]))
    assert wrong_audience.status == 400
    forged = await exchange(
        _id_token(ECKey.generate_key("P-256", parameters={"kid": "idp-1"}), subject=subject, amr=["pwd"])
    )
    assert forged.status == 400
