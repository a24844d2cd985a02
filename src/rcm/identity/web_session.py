"""Browser sessions: a cookie holding a short-lived session token of ours, and the CSRF token bound to it.

The cookie (``__Host-rcm_session`` over https, ``rcm_session`` on plain-http development; HttpOnly, Secure,
SameSite=Lax, path /) holds a JWT signed with the same keys as our access tokens but for another audience
(``rcm-web``): it is never accepted as a Bearer token, nor a Bearer token as a session. It carries the
person's claims (as an access token does), the session id, the login time and a random CSRF secret.

- Idle timeout: the token expires ``RCM_WEB_SESSION_IDLE_SECONDS`` after it was issued; every request that
  finds it older than ``REFRESH_AFTER_SECONDS`` gets a fresh one (sliding), never past the absolute limit.
- Absolute timeout: ``auth_time + RCM_WEB_SESSION_ABSOLUTE_SECONDS``, kept through every refresh.
- Revocation: the authentication middleware runs the same live status check as for Bearer tokens on every
  request (``rcm.identity.status``), so a deactivated person or a removed role ends the session at once.
- Logout: the session id is recorded as ended (the used-assertion table, until the session's absolute
  limit: a copy that kept being refreshed outlives the token presented) and the cookie cleared, so a copy
  of the cookie is refused too.
- CSRF: unsafe methods with a session cookie must carry the session's CSRF token (form field ``_csrf`` or
  header ``X-CSRF-Token``); an attacker's page can neither read the HttpOnly cookie nor the token.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from litestar.datastructures import Cookie
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.clients_repository import assertion_recorded, remember_assertion
from rcm.identity.keys import ALG, LEEWAY_SECONDS
from rcm.identity.principal import Principal
from rcm.identity.tokens import (
    InvalidToken,
    issuer,
    principal_claims,
    principal_from_claims,
    verified_claims,
)
from rcm.kit.db import platform_transaction
from rcm.kit.models import utcnow

SESSION_AUDIENCE = "rcm-web"
LOGIN_AUDIENCE = "rcm-web-login"
SESSION_COOKIE = "rcm_session"
LOGIN_COOKIE = "rcm_login"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
# A session token older than this is replaced on the next request (the idle clock restarts).
REFRESH_AFTER_SECONDS = 60
# The login round trip (our /login to the issuer and back to /auth/callback) must finish within this.
LOGIN_TTL_SECONDS = 600
# The used-assertion table's client column for ended sessions (a namespace no API client id can take).
ENDED_SESSIONS = "rcm-web:ended-session"


@dataclass(frozen=True, slots=True)
class WebSession:
    """A verified session cookie: the person, the session's id and CSRF secret, and its clock."""

    principal: Principal
    sid: str
    csrf: str
    auth_time: int
    issued_at: int
    expires_at: int

    def csrf_matches(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf.encode(), (presented or "").encode())

    def due_for_refresh(self, now: int) -> bool:
        return now - self.issued_at >= REFRESH_AFTER_SECONDS


def secure_origin(settings: Settings) -> bool:
    return settings.base_url.startswith("https://")


def cookie_name(settings: Settings, base: str = SESSION_COOKIE) -> str:
    """``__Host-`` when served over https: the browser then insists on Secure, path / and no Domain, so no
    sibling host can plant or overwrite it."""
    return f"__Host-{base}" if secure_origin(settings) else base


def _expiry(settings: Settings, *, now: int, auth_time: int) -> int:
    return min(now + settings.web_session_idle_seconds, auth_time + settings.web_session_absolute_seconds)


def sign_session(
    principal: Principal,
    key: ECKey,
    settings: Settings,
    *,
    auth_time: int | None = None,
    sid: str | None = None,
    csrf: str | None = None,
    now: datetime | None = None,
) -> tuple[str, WebSession]:
    """A new session token (``sid``/``csrf``/``auth_time`` given: the same session, refreshed)."""
    issued = int((now or utcnow()).timestamp())
    started = auth_time if auth_time is not None else issued
    session = WebSession(
        principal=principal,
        sid=sid or uuid.uuid4().hex,
        csrf=csrf or secrets.token_urlsafe(32),
        auth_time=started,
        issued_at=issued,
        expires_at=_expiry(settings, now=issued, auth_time=started),
    )
    claims = {
        "iss": issuer(settings),
        "aud": SESSION_AUDIENCE,
        "iat": issued,
        "nbf": issued,
        "exp": session.expires_at,
        **principal_claims(principal),
        "sid": session.sid,
        "csrf": session.csrf,
        "auth_time": started,
    }
    token = jwt.encode({"alg": ALG, "kid": key.kid, "typ": "session+jwt"}, claims, key, algorithms=[ALG])
    return token, session


def verify_session(
    token: str, keys: KeySet, settings: Settings, *, now: datetime | None = None
) -> WebSession:
    claims = _verified(token, keys, settings, SESSION_AUDIENCE, now)
    try:
        session = WebSession(
            principal=principal_from_claims(claims),
            sid=str(claims["sid"]),
            csrf=str(claims["csrf"]),
            auth_time=int(claims["auth_time"]),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
        )
    except (KeyError, ValueError, TypeError):
        raise InvalidToken("claims invalid") from None
    current = int((now or utcnow()).timestamp())
    if current > session.auth_time + settings.web_session_absolute_seconds:
        raise InvalidToken("session too old")
    return session


def _verified(
    token: str, keys: KeySet, settings: Settings, audience: str, now: datetime | None
) -> dict[str, Any]:
    return verified_claims(token, keys, settings, audience=audience, now=now)


class EndedSessions:
    """Sessions ended by logout, read before a cookie is honoured: on record in the database (every replica
    sees them) until the session's absolute limit, when every copy of its token has expired anyway (a copy
    that kept being refreshed expires later than the token presented at logout); this process also
    remembers its own at once and trusts a "not ended" answer for ``ttl`` seconds (as the live status check
    does)."""

    def __init__(
        self, ttl_seconds: float, absolute_seconds: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl_seconds
        self.absolute_seconds = absolute_seconds
        self._clock = clock
        self._ended: dict[str, int] = {}
        self._live: dict[str, float] = {}

    async def ended(self, sessions: async_sessionmaker[AsyncSession], session: WebSession) -> bool:
        if session.sid in self._ended:
            return True
        now = self._clock()
        if self._live.get(session.sid, 0.0) > now:
            return False
        async with platform_transaction(sessions) as db:
            ended = await assertion_recorded(db, client_id=ENDED_SESSIONS, jti=session.sid)
        self._forget_stale()
        if ended:
            self._ended[session.sid] = session.auth_time + self.absolute_seconds
        elif self.ttl > 0:
            self._live[session.sid] = now + self.ttl
        return ended

    async def end(self, db: AsyncSession, session: WebSession) -> None:
        """Record ``session`` as ended, in the caller's transaction (with its audit event)."""
        last_expiry = session.auth_time + self.absolute_seconds
        await remember_assertion(
            db,
            client_id=ENDED_SESSIONS,
            jti=session.sid,
            expires_at=datetime.fromtimestamp(last_expiry, UTC),
            keep_expired_for=timedelta(seconds=LEEWAY_SECONDS),
        )
        self._ended[session.sid] = last_expiry
        self._live.pop(session.sid, None)

    def _forget_stale(self) -> None:
        if len(self._live) > 10_000:
            self._live.clear()
        if len(self._ended) > 10_000:
            wall = int(time.time())
            self._ended = {sid: exp for sid, exp in self._ended.items() if exp + LEEWAY_SECONDS > wall}


# --- the login round trip ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """What /login sent the browser off with, kept in a signed cookie until /auth/callback: the issuer, the
    state and nonce to compare, the PKCE verifier and where to go afterwards."""

    issuer: str
    state: str
    nonce: str
    verifier: str
    next: str


def new_login_attempt(issuer_name: str, next_path: str) -> LoginAttempt:
    return LoginAttempt(
        issuer=issuer_name,
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        # RFC 7636 §4.1: 43..128 unreserved characters; 64 random bytes give 86.
        verifier=secrets.token_urlsafe(64),
        next=next_path,
    )


def sign_login_attempt(attempt: LoginAttempt, key: ECKey, settings: Settings) -> str:
    now = int(utcnow().timestamp())
    claims = {
        "iss": issuer(settings),
        "aud": LOGIN_AUDIENCE,
        "iat": now,
        "exp": now + LOGIN_TTL_SECONDS,
        "idp": attempt.issuer,
        "state": attempt.state,
        "nonce": attempt.nonce,
        "verifier": attempt.verifier,
        "next": attempt.next,
    }
    return jwt.encode({"alg": ALG, "kid": key.kid}, claims, key, algorithms=[ALG])


def verify_login_attempt(token: str, keys: KeySet, settings: Settings) -> LoginAttempt:
    claims = _verified(token, keys, settings, LOGIN_AUDIENCE, None)
    try:
        return LoginAttempt(
            issuer=str(claims["idp"]),
            state=str(claims["state"]),
            nonce=str(claims["nonce"]),
            verifier=str(claims["verifier"]),
            next=str(claims["next"]),
        )
    except KeyError:
        raise InvalidToken("claims invalid") from None


# --- cookies ----------------------------------------------------------------------------------------------


def make_cookie(settings: Settings, base: str, value: str, *, max_age: int) -> Cookie:
    """HttpOnly, Secure, SameSite=Lax, path / (Lax: the issuer's redirect back to /auth/callback is a
    top-level navigation that must carry the login cookie; a cross-site POST carries neither). Browsers
    accept Secure cookies from http://localhost and 127.0.0.1, so plain-http development works too."""
    return Cookie(
        key=cookie_name(settings, base),
        value=value,
        path="/",
        max_age=max(max_age, 0),
        httponly=True,
        secure=True,
        samesite="lax",
    )


def expired_cookie(settings: Settings, base: str) -> Cookie:
    return make_cookie(settings, base, "", max_age=0)
