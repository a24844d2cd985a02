"""Browser login over the real app and database: the dev issuer's code flow with PKCE, the session cookie,
CSRF, logout, revocation, timeouts and the login page's redirects."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import AuditEvent
from rcm.config import Settings
from rcm.identity.browser_login import safe_next
from rcm.identity.dev_codes import s256
from rcm.identity.keys import KeyRing
from rcm.identity.oidc import DEV_AUDIENCE, unverified_claims
from rcm.identity.principal import Role
from rcm.identity.status import status_changed
from rcm.identity.testing import user_principal
from rcm.identity.tokens import InvalidToken
from rcm.identity.web_session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    cookie_name,
    make_cookie,
    sign_session,
    verify_session,
)
from rcm.kit.db import platform_transaction
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import AppUser, Tenant
from rcm.tenancy.service import assign_staff
from tests.identity.conftest import make_user
from tests.web.support import browser_login, dev_issuer_code, path_of, set_cookies, start_login

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


async def test_login_opens_a_session_that_sees_the_own_practice(
    client: Client, tenant: Tenant, control_sessions: Sessions, audit_log: list[AuditEvent]
) -> None:
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    browser = await browser_login(client, owner.email, next_path=f"/app/t/{tenant.slug}")
    landing = await browser.get("/app")
    assert landing.status_code == 200
    assert tenant.name in landing.text
    assert f'href="/app/t/{tenant.slug}"' in landing.text
    practice = await browser.get(f"/app/t/{tenant.slug}")
    assert practice.status_code == 200, practice.text
    assert "Key performance indicators" in practice.text
    logins = [e for e in audit_log if e.event_type == "user.login"]
    assert len(logins) == 1
    assert logins[0].actor is not None
    assert logins[0].actor.user_id == owner.id


async def test_the_session_cookie_is_httponly_secure_lax(client: Client, control_sessions: Sessions) -> None:
    person = await make_user(control_sessions, ["biller"])
    authorize, login_cookie = await start_login(client)
    callback = await dev_issuer_code(client, authorize, person.email, mfa=True)
    response = await client.get(callback, headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie[LOGIN_COOKIE]}"})
    assert response.status_code == 303
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}="))
    lowered = header.lower()
    assert "httponly" in lowered
    assert "secure" in lowered
    assert "samesite=lax" in lowered
    assert "path=/" in lowered
    # The login cookie is spent: cleared with the same response.
    assert set_cookies(response)[LOGIN_COOKIE] == ""


async def test_the_authorization_request_carries_pkce_state_and_nonce(client: Client) -> None:
    authorize, _ = await start_login(client)
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert query["response_type"] == "code"
    assert query["client_id"] == DEV_AUDIENCE
    assert len(query["state"]) >= 32
    assert len(query["nonce"]) >= 32


async def test_a_callback_with_another_state_is_refused_and_audited(
    client: Client, control_sessions: Sessions, audit_log: list[AuditEvent]
) -> None:
    person = await make_user(control_sessions, ["biller"])
    authorize, login_cookie = await start_login(client)
    callback = await dev_issuer_code(client, authorize, person.email, mfa=False)
    parts = urlsplit(callback)
    code = parse_qs(parts.query)["code"][0]
    forged = await client.get(
        parts.path,
        params={"code": code, "state": "someone-elses-state"},
        headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie[LOGIN_COOKIE]}"},
    )
    assert forged.status_code == 400
    assert SESSION_COOKIE not in set_cookies(forged)
    # Without the login cookie (another browser), the genuine callback is refused too.
    assert (await client.get(callback)).status_code == 400
    denied = [e for e in audit_log if e.event_type == "token.denied"]
    assert [e.detail["error"] for e in denied] == ["state_mismatch", "login_expired"]


async def test_an_unknown_person_does_not_log_in(client: Client, audit_log: list[AuditEvent]) -> None:
    authorize, login_cookie = await start_login(client)
    callback = await dev_issuer_code(client, authorize, "nobody-here@test.invalid", mfa=False)
    response = await client.get(callback, headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie[LOGIN_COOKIE]}"})
    assert response.status_code == 400
    assert "did not complete" in response.text
    assert SESSION_COOKIE not in set_cookies(response)
    assert [e.event_type for e in audit_log] == ["token.denied"]


async def test_the_dev_token_endpoint_wants_the_verifier_and_takes_a_code_once(
    client: Client, settings: Settings
) -> None:
    verifier = "v" * 43 + "erifier-of-this-test"
    challenge = s256(verifier)
    params = {
        "response_type": "code",
        "client_id": DEV_AUDIENCE,
        "redirect_uri": settings.base_url + "/auth/callback",
        "state": "s" * 20,
        "nonce": "n" * 20,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = await client.post(
        "/dev/oidc/authorize", data={**params, "email": "a@test.invalid", "mfa": "on"}
    )
    assert response.status_code == 303
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": params["redirect_uri"],
        "client_id": DEV_AUDIENCE,
    }
    wrong = await client.post("/dev/oidc/token", data={**form, "code_verifier": "w" * 43})
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant"}
    other_uri = await client.post(
        "/dev/oidc/token", data={**form, "redirect_uri": "https://evil.example/cb", "code_verifier": verifier}
    )
    assert other_uri.status_code == 400
    good = await client.post("/dev/oidc/token", data={**form, "code_verifier": verifier})
    assert good.status_code == 200, good.text
    parsed = unverified_claims(good.json()["id_token"])
    assert parsed is not None
    assert parsed[1]["nonce"] == "n" * 20
    assert parsed[1]["email"] == "a@test.invalid"
    assert "mfa" in parsed[1]["amr"]
    again = await client.post("/dev/oidc/token", data={**form, "code_verifier": verifier})
    assert again.status_code == 400


async def test_the_dev_issuer_sends_codes_only_to_our_callback(client: Client, settings: Settings) -> None:
    response = await client.get(
        "/dev/oidc/authorize",
        params={
            "response_type": "code",
            "client_id": DEV_AUDIENCE,
            "redirect_uri": "https://evil.example/auth/callback",
            "state": "s" * 20,
            "nonce": "n" * 20,
            "code_challenge": "c" * 43,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 400
    assert "redirect_uri" in response.text
    plain = await client.get(
        "/dev/oidc/authorize",
        params={
            "response_type": "code",
            "client_id": DEV_AUDIENCE,
            "redirect_uri": settings.base_url + "/auth/callback",
            "state": "s",
            "nonce": "n",
            "code_challenge": "c" * 43,
            "code_challenge_method": "plain",
        },
    )
    assert plain.status_code == 400


async def test_pages_send_anonymous_callers_to_login(client: Client) -> None:
    response = await client.get("/app/t/some-practice?view=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fapp%2Ft%2Fsome-practice%3Fview%3D1"
    api = await client.get("/api/v1/tenants/some-practice/reports/intake-summary")
    assert api.status_code == 401


def test_next_accepts_only_paths_of_this_site() -> None:
    assert safe_next("/app/t/x?y=1") == "/app/t/x?y=1"
    for hostile in ("//evil.example", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
                    "/app\r\nSet-Cookie: x=1", "", None, "evil"):  # fmt: skip
        assert safe_next(hostile) == "/app", hostile


async def test_login_with_a_foreign_next_lands_on_the_app(client: Client, control_sessions: Sessions) -> None:
    person = await make_user(control_sessions, ["biller"])
    response = await client.get("/login", params={"next": "//evil.example/phish"})
    assert response.status_code == 303
    login_cookie = set_cookies(response)[LOGIN_COOKIE]
    callback = await dev_issuer_code(client, path_of(response.headers["location"]), person.email, mfa=False)
    done = await client.get(callback, headers={"Cookie": f"{LOGIN_COOKIE}={login_cookie}"})
    assert done.status_code == 303
    assert done.headers["location"] == "/app"


async def test_logout_needs_the_csrf_token_and_ends_the_session(
    client: Client, control_sessions: Sessions, audit_log: list[AuditEvent]
) -> None:
    person = await make_user(control_sessions, ["biller"])
    browser = await browser_login(client, person.email)
    refused = await client.post("/logout", headers=browser.headers(csrf=False), data={"_csrf": "guess"})
    assert refused.status_code == 403
    assert (await browser.get("/app")).status_code == 200  # still signed in
    done = await client.post("/logout", headers=browser.headers(csrf=False), data={"_csrf": browser.csrf})
    assert done.status_code == 200, done.text
    assert "signed out" in done.text
    assert set_cookies(done)[SESSION_COOKIE] == ""
    # A copy of the old cookie is refused too: the session is over on the server, not only in the browser.
    after = await browser.get("/app")
    assert after.status_code == 303
    assert after.headers["location"].startswith("/login")
    kinds = [e.event_type for e in audit_log]
    assert "user.logout" in kinds
    assert any(e.event_type == "access.denied" and e.detail.get("reason") == "csrf" for e in audit_log)


async def test_csrf_applies_to_cookie_callers_of_the_api_and_not_to_bearer_callers(
    client: Client, tenant: Tenant, control_sessions: Sessions
) -> None:
    coder = await make_user(control_sessions, ["coder"])
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(tenant.id), [coder.email])
    browser = await browser_login(client, coder.email)
    url = f"/api/v1/tenants/{tenant.slug}/providers"
    body = {"npi": "1003000126", "name": "Dr Cookie Csrf"}
    no_token = await client.post(
        url, json=body, headers={**browser.headers(csrf=False), "Idempotency-Key": "k1"}
    )
    assert no_token.status_code == 403
    assert "CSRF" in no_token.text
    with_token = await client.post(url, json=body, headers={**browser.headers(), "Idempotency-Key": "k2"})
    assert with_token.status_code in (200, 201), with_token.text
    # The same person's session reads the API as their Bearer token would.
    listed = await client.get(url, headers=browser.headers(csrf=False))
    assert listed.status_code == 200
    assert "Dr Cookie Csrf" in listed.text


async def test_deactivating_the_person_ends_the_session(
    client: Client, tenant: Tenant, control_sessions: Sessions
) -> None:
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    browser = await browser_login(client, owner.email)
    async with platform_transaction(control_sessions) as session:
        await session.execute(update(AppUser).where(AppUser.id == owner.id).values(active=False))
    status_changed()
    page = await browser.get(f"/app/t/{tenant.slug}")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=")
    api = await client.get(f"/api/v1/tenants/{tenant.slug}/providers", headers=browser.headers(csrf=False))
    assert api.status_code == 401


async def test_a_session_cookie_is_no_bearer_token_and_a_bearer_token_no_cookie(
    client: Client, tenant: Tenant, control_sessions: Sessions, mint: object
) -> None:
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    browser = await browser_login(client, owner.email)
    url = f"/api/v1/tenants/{tenant.slug}/providers"
    as_bearer = await client.get(url, headers={"Authorization": f"Bearer {browser.cookie}"})
    assert as_bearer.status_code == 401


async def test_idle_refresh_and_absolute_limit(
    client: Client, tenant: Tenant, settings: Settings, sessions: Sessions, control_sessions: Sessions
) -> None:
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    principal = user_principal(Role.PRACTICE_OWNER, user_id=owner.id, home_tenant=tenant.id)
    keyring = KeyRing(settings, control=control_sessions)
    key = await keyring.signing_key(sessions)
    keys = await keyring.verification_keys(sessions)
    # Issued five minutes ago (within the idle limit): the next request slides it forward.
    now = utcnow()
    token, old = sign_session(principal, key, settings, now=now - timedelta(minutes=5))
    response = await client.get("/app", headers={"Cookie": f"{SESSION_COOKIE}={token}"})
    assert response.status_code == 200
    fresh = verify_session(set_cookies(response)[SESSION_COOKIE], keys, settings)
    assert fresh.sid == old.sid
    assert fresh.csrf == old.csrf
    assert fresh.auth_time == old.auth_time
    assert fresh.expires_at > old.expires_at
    # Idle too long: expired.
    idle = settings.web_session_idle_seconds + 120
    stale, _ = sign_session(principal, key, settings, now=now - timedelta(seconds=idle))
    assert (await client.get("/app", headers={"Cookie": f"{SESSION_COOKIE}={stale}"})).status_code == 303
    # Refreshed all day long, a session still ends at its absolute limit.
    started = int(now.timestamp()) - settings.web_session_absolute_seconds - 5
    kept_alive, _ = sign_session(principal, key, settings, auth_time=started, now=now - timedelta(seconds=30))
    try:
        verify_session(kept_alive, keys, settings)
    except InvalidToken:
        pass
    else:
        raise AssertionError("a session past its absolute limit was accepted")


async def test_pages_carry_a_strict_content_security_policy(
    client: Client, control_sessions: Sessions
) -> None:
    person = await make_user(control_sessions, ["biller"])
    browser = await browser_login(client, person.email)
    response = await browser.get("/app")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert 'href="#main"' in response.text
    assert '<nav aria-label="Main">' in response.text
    css = await client.get("/static/app.css")
    assert css.status_code == 200
    assert ":focus-visible" in css.text


def test_the_cookie_is_host_prefixed_over_https(settings: Settings) -> None:
    https = settings.model_copy(update={"base_url": "https://rcm.example.test"})
    assert cookie_name(https) == "__Host-rcm_session"
    assert cookie_name(settings) == "rcm_session"  # plain-http development: browsers refuse __Host- there
    cookie = make_cookie(https, SESSION_COOKIE, "v", max_age=60)
    assert cookie.key == "__Host-rcm_session"
    assert cookie.path == "/"
    assert cookie.domain is None
    assert cookie.secure
    assert cookie.httponly
    assert cookie.samesite == "lax"


async def test_the_landing_lists_what_each_person_may_open(
    client: Client, tenant: Tenant, other_tenant: Tenant, control_sessions: Sessions
) -> None:
    coder = await make_user(control_sessions, ["coder"])
    async with platform_transaction(control_sessions) as session:
        await assign_staff(session, TenantId(other_tenant.id), [coder.email])
    owner = await make_user(control_sessions, ["practice_owner"], home_tenant=tenant)
    admin = await make_user(control_sessions, ["admin"])
    seen = {}
    for person in (coder, owner, admin):
        landing = await (await browser_login(client, person.email)).get("/app")
        seen[person.email] = (
            f"/app/t/{tenant.slug}" in landing.text,
            f"/app/t/{other_tenant.slug}" in landing.text,
        )
    assert seen[coder.email] == (False, True)  # the practice they are assigned to, only
    assert seen[owner.email] == (True, False)  # their own practice, only
    assert seen[admin.email] == (False, False)  # administrators open practices through break-glass only
