"""Browser login through an external OIDC issuer found by discovery: a real HTTP identity provider on
loopback (discovery document, JWKS, token endpoint that checks the PKCE verifier), our /login and
/auth/callback in between, and the person's roles from our own table."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.audit.events import AuditEvent
from rcm.config import Settings
from rcm.identity.dev_codes import s256
from rcm.identity.web_session import LOGIN_COOKIE, SESSION_COOKIE
from rcm.kit.db import platform_transaction
from rcm.tenancy.models import AppUser, Tenant
from tests.web.support import set_cookies

CLIENT_ID = "rcm-browser"


@dataclass
class FakeIdP:
    """An identity provider's three endpoints; ``grant`` stands for a person signing in on its pages."""

    key: ECKey
    base: str = ""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def grant(self, authorize_query: dict[str, str], subject: str) -> str:
        code = uuid.uuid4().hex
        self.codes[code] = {**authorize_query, "sub": subject}
        return code

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        granted = self.codes.pop(form.get("code", ""), None)  # single use
        if (
            granted is None
            or form.get("grant_type") != "authorization_code"
            or form.get("client_id") != granted["client_id"]
            or form.get("redirect_uri") != granted["redirect_uri"]
            or s256(form.get("code_verifier", "")) != granted["code_challenge"]
        ):
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {
            "iss": self.base,
            "aud": CLIENT_ID,
            "sub": granted["sub"],
            "iat": now,
            "exp": now + 300,
            "nonce": granted["nonce"],
            "amr": ["pwd", "otp"],
        }
        token = jwt.encode({"alg": "ES256", "kid": "idp-1"}, claims, self.key, algorithms=["ES256"])
        return 200, {"id_token": token, "access_token": "opaque", "token_type": "Bearer"}


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdP]:
    fake = FakeIdP(ECKey.generate_key("P-256", parameters={"kid": "idp-1", "use": "sig", "alg": "ES256"}))

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                self._send(
                    200,
                    {
                        "issuer": fake.base,
                        "authorization_endpoint": f"{fake.base}/authorize",
                        "token_endpoint": f"{fake.base}/token",
                        "jwks_uri": f"{fake.base}/jwks",
                    },
                )
            elif self.path == "/jwks":
                self._send(200, {"keys": [fake.key.as_dict(private=False)]})
            else:
                self._send(404, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            self._send(*fake.token(form))

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()


@pytest.fixture
async def external_client(idp: FakeIdP, settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    issuers = [{"issuer": idp.base, "audience": CLIENT_ID, "jwks_uri": f"{idp.base}/jwks", "discovery": True}]
    configured = settings.model_copy(
        update={"oidc_issuers": json.dumps(issuers), "dev_issuer_enabled": False}
    )
    async with AsyncTestClient(app=create_app(configured)) as client:
        client.follow_redirects = False
        yield client


async def test_an_external_issuer_login_by_discovery_with_pkce(
    external_client: AsyncTestClient[Litestar],
    idp: FakeIdP,
    tenant: Tenant,
    control_sessions: async_sessionmaker[AsyncSession],
    audit_log: list[AuditEvent],
) -> None:
    subject = f"ext-{uuid.uuid4().hex[:8]}"
    async with platform_transaction(control_sessions) as session:
        session.add(
            AppUser(
                id=uuid.uuid4(),
                issuer=idp.base,
                subject=subject,
                email=f"{subject}@test.invalid",
                display_name="External person",
                roles=["practice_owner"],
                home_tenant_id=tenant.id,
                active=True,
            )
        )
    started = await external_client.get("/login", params={"next": f"/app/t/{tenant.slug}"})
    assert started.status_code == 303
    location = urlsplit(started.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{idp.base}/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["code_challenge_method"] == "S256"
    login_cookie = {"Cookie": f"{LOGIN_COOKIE}={set_cookies(started)[LOGIN_COOKIE]}"}

    code = idp.grant(query, subject)
    back = await external_client.get(
        "/auth/callback",
        params={"code": code, "state": query["state"], "iss": idp.base},
        headers=login_cookie,
    )
    assert back.status_code == 303, back.text
    assert back.headers["location"] == f"/app/t/{tenant.slug}"
    # The verifier went to the issuer's token endpoint (never the browser); its hash was the challenge.
    assert s256(idp.token_requests[-1]["code_verifier"]) == query["code_challenge"]
    session_cookie = {"Cookie": f"{SESSION_COOKIE}={set_cookies(back)[SESSION_COOKIE]}"}
    page = await external_client.get(f"/app/t/{tenant.slug}", headers=session_cookie)
    assert page.status_code == 200, page.text
    login = next(e for e in audit_log if e.event_type == "user.login")
    assert login.detail["issuer"] == idp.base
    assert login.detail["mfa"] is True

    # The same code again (a replayed callback): the issuer refuses it, no session.
    again = await external_client.get(
        "/auth/callback", params={"code": code, "state": query["state"]}, headers=login_cookie
    )
    assert again.status_code == 400
    assert SESSION_COOKIE not in set_cookies(again)


async def test_an_issuer_that_cannot_be_reached_is_a_503_page_fetched_once_a_while(
    settings: Settings,
) -> None:
    """Discovery fails (nothing listens there): /login answers a 503 page, not a 500, and the next
    anonymous /login within the interval does not fetch again (no fetch per request to amplify)."""
    listener = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    dead = f"http://127.0.0.1:{listener.server_address[1]}"
    listener.server_close()  # the port is closed: every fetch is refused
    issuers = [{"issuer": dead, "audience": CLIENT_ID, "jwks_uri": f"{dead}/jwks", "discovery": True}]
    configured = settings.model_copy(
        update={"oidc_issuers": json.dumps(issuers), "dev_issuer_enabled": False}
    )
    app = create_app(configured)
    async with AsyncTestClient(app=app) as client:
        client.follow_redirects = False
        first = await client.get("/login")
        assert first.status_code == 503, first.text
        assert "text/html" in first.headers["content-type"]
        assert "identity provider cannot be reached" in first.text
        failures = app.state.identity_tokens.issuer_keys._endpoint_failures
        assert set(failures) == {dead}
        when = failures[dead]
        again = await client.get("/login")
        assert again.status_code == 503
        assert failures[dead] == when  # not fetched again: the failure was remembered
