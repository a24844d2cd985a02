"""The browser login tried as an attacker would (security review): CSRF tokens in the wrong place or of
another session, method overrides, a planted session cookie, and the dev issuer in production."""

from __future__ import annotations

from datetime import timedelta

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.app import create_app
from rcm.config import Settings
from rcm.identity.browser_login import browser_issuers, safe_next
from rcm.identity.models import UsedClientAssertion
from rcm.identity.oidc import DEV_ISSUER, trusted_issuers
from rcm.identity.web_session import ENDED_SESSIONS, SESSION_COOKIE, sign_session, verify_session
from rcm.kit.models import utcnow
from tests.identity.conftest import make_user
from tests.web.support import browser_login, dev_issuer_code, set_cookies, start_login

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]


async def test_a_csrf_token_of_another_session_or_out_of_place_is_refused(
    client: Client, control_sessions: Sessions
) -> None:
    victim = await browser_login(client, (await make_user(control_sessions, ["biller"])).email)
    attacker = await browser_login(client, (await make_user(control_sessions, ["biller"])).email)
    cookie_only = victim.headers(csrf=False)
    attempts = {
        "another session's token": await client.post(
            "/logout", headers={**cookie_only, "X-CSRF-Token": attacker.csrf}
        ),
        "empty header, good field": await client.post(
            "/logout", headers={**cookie_only, "X-CSRF-Token": ""}, data={"_csrf": victim.csrf}
        ),
        "text/plain body": await client.post(
            "/logout", headers={**cookie_only, "Content-Type": "text/plain"}, content=f"_csrf={victim.csrf}"
        ),
        "json body field": await client.post("/logout", headers=cookie_only, json={"_csrf": victim.csrf}),
        "method override": await client.post(
            "/logout", headers={**cookie_only, "X-HTTP-Method-Override": "GET"}
        ),
        "token as a query parameter": await client.post(f"/logout?_csrf={victim.csrf}", headers=cookie_only),
    }
    for name, response in attempts.items():
        assert response.status_code == 403, f"{name}: {response.status_code}"
    assert (await client.get("/logout", headers=cookie_only)).status_code == 405  # no logout by GET
    assert (await victim.get("/app")).status_code == 200  # none of these ended the session
    ok = await client.post("/logout", headers=cookie_only, files={"_csrf": (None, victim.csrf)})
    assert ok.status_code == 200  # the token in a multipart form is taken
    assert (await victim.get("/app")).status_code == 303


async def test_a_planted_session_cookie_is_replaced_at_login(
    client: Client, control_sessions: Sessions, settings: Settings, app: Litestar
) -> None:
    """Session fixation: a browser carrying someone else's session cookie into a login gets a new session."""
    planted = await browser_login(client, (await make_user(control_sessions, ["biller"])).email)
    victim = await make_user(control_sessions, ["coder"])
    authorize, login_cookie = await start_login(client)
    callback = await dev_issuer_code(client, authorize, victim.email, mfa=False)
    cookies = {**login_cookie, SESSION_COOKIE: planted.cookie}
    done = await client.get(callback, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
    assert done.status_code == 303
    fresh = set_cookies(done)[SESSION_COOKIE]
    keys = await app.state.identity_keyring.verification_keys(app.state.sessions)
    old, new = verify_session(planted.cookie, keys, settings), verify_session(fresh, keys, settings)
    assert new.sid != old.sid
    assert new.csrf != old.csrf
    assert new.principal.user_id == victim.id


def test_next_keeps_encoded_and_dotted_forms_on_this_site() -> None:
    for hostile in ("/\t/evil.example", "///evil.example", "/\\/evil.example", "\\\\evil.example",
                    "/app\\..\\..\\/evil.example", " //evil.example"):  # fmt: skip
        assert safe_next(hostile) == "/app", repr(hostile)
    # Encoded or dotted forms stay paths of this site (a browser resolves them under our origin).
    for same_site in ("/%2F/evil.example", "/.//evil.example", "/%5Cevil.example"):
        assert safe_next(same_site) == same_site


def test_the_dev_issuer_is_absent_in_production(settings: Settings) -> None:
    prod = settings.model_copy(
        update={"env": "prod", "dev_issuer_enabled": True, "base_url": "https://rcm.example"}
    )
    assert DEV_ISSUER not in trusted_issuers(prod)
    assert browser_issuers(prod) == []
    paths = set(create_app(prod).route_handler_method_map)
    assert "/login" in paths
    assert not any(p.startswith("/dev/") for p in paths), sorted(p for p in paths if p.startswith("/dev"))


async def test_logout_outlasts_every_copy_of_the_session(
    client: Client, control_sessions: Sessions, settings: Settings, app: Litestar, owner_engine: AsyncEngine
) -> None:
    """A copy of the cookie that kept being used (so kept being refreshed) expires later than the cookie the
    person logs out with. The record that the session ended must outlive that copy: once the record is
    purged (at its ``expires_at``), the copy would be honoured again and could slide on until the absolute
    limit."""
    browser = await browser_login(client, (await make_user(control_sessions, ["biller"])).email)
    keyring = app.state.identity_keyring
    keys = await keyring.verification_keys(app.state.sessions)
    at_logout = verify_session(browser.cookie, keys, settings)
    # The attacker's copy, refreshed ten minutes after the person's cookie was (same sid, csrf, auth_time).
    key = await keyring.signing_key(app.state.sessions)
    later = utcnow() + timedelta(minutes=10)
    _, copy = sign_session(
        at_logout.principal, key, settings, auth_time=at_logout.auth_time, sid=at_logout.sid,
        csrf=at_logout.csrf, now=later,
    )  # fmt: skip
    assert copy.expires_at > at_logout.expires_at
    done = await client.post("/logout", headers=browser.headers())
    assert done.status_code == 200
    async with owner_engine.connect() as conn:
        kept_until = (
            await conn.execute(
                select(UsedClientAssertion.expires_at).where(
                    UsedClientAssertion.client_id == ENDED_SESSIONS, UsedClientAssertion.jti == at_logout.sid
                )
            )
        ).scalar_one()
    assert int(kept_until.timestamp()) >= copy.expires_at
    assert int(kept_until.timestamp()) >= at_logout.auth_time + settings.web_session_absolute_seconds
