"""Browser login: the OIDC authorization code flow with PKCE (S256), state and nonce, as the client.

``start`` builds the authorization request for a trusted issuer and the ``LoginAttempt`` kept (signed) in a
cookie until the browser comes back; ``finish`` checks the state, trades the code and the PKCE verifier for
an ID token at the issuer's token endpoint (the dev issuer's in-process), checks the nonce, and then hands
the ID token to the token service exactly as a jwt-bearer request would: the same signature, issuer,
audience and expiry checks, the same lookup of the person in ``app_user``, the same first-login linking and
the same ``user.login`` / ``token.denied`` audit events. What comes back is the Principal a browser session
is made for.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.config import Settings
from rcm.identity import audit_hooks
from rcm.identity.dev_codes import CodeRefused, callback_url, redeem_code, s256
from rcm.identity.oidc import IssuerUnreachable, TrustedIssuer, trusted_issuers, unverified_claims
from rcm.identity.principal import Principal
from rcm.identity.server import JWT_BEARER, TokenService
from rcm.identity.web_session import LoginAttempt, new_login_attempt
from rcm.kit.errors import ServiceUnavailable

GRANT = "authorization_code"
Sessions = async_sessionmaker[AsyncSession]


class LoginFailed(Exception):
    """The login did not complete; the message is a short code for the audit trail and the page."""


def browser_issuers(settings: Settings) -> list[TrustedIssuer]:
    """The trusted issuers a browser can log in through, in a stable order (the dev issuer last)."""
    usable = [i for i in trusted_issuers(settings).values() if i.browser_login]
    return sorted(usable, key=lambda i: (i.jwks_uri is None, i.issuer))


def safe_next(value: str | None, default: str = "/app") -> str:
    """Where to go after login: only a path of this site. ``//host`` and ``/\\host`` are other sites to a
    browser, and anything with a scheme or control character is refused (an open redirect otherwise)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(c) < 0x20 or c == "\\" for c in value) or len(value) > 2000:
        return default
    return value


async def start(service: TokenService, issuer: TrustedIssuer, next_path: str) -> tuple[str, LoginAttempt]:
    """The URL to send the browser to, and the attempt to remember until it comes back."""
    try:
        authorization_endpoint, _ = await service.issuer_keys.login_endpoints(issuer)
    except IssuerUnreachable:
        raise ServiceUnavailable("The identity provider cannot be reached; try again in a minute.") from None
    attempt = new_login_attempt(issuer.issuer, safe_next(next_path))
    query = urlencode(
        {
            "response_type": "code",
            "client_id": issuer.login_client_id,
            "redirect_uri": callback_url(service.settings),
            "scope": "openid email",
            "state": attempt.state,
            "nonce": attempt.nonce,
            "code_challenge": s256(attempt.verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in authorization_endpoint else "?"
    return f"{authorization_endpoint}{separator}{query}", attempt


@dataclass(frozen=True, slots=True)
class Callback:
    code: str | None
    state: str | None
    error: str | None


async def finish(
    service: TokenService,
    sessions: Sessions,
    attempt: LoginAttempt | None,
    callback: Callback,
    *,
    request: RequestInfo,
    control: Sessions | None,
) -> Principal:
    """The person the issuer vouched for; ``LoginFailed`` (audited) otherwise."""
    try:
        id_token = await _id_token(service, sessions, attempt, callback)
    except LoginFailed as exc:
        await audit_hooks.token_denied(
            sessions,
            request=request,
            grant_type=GRANT,
            error=str(exc),
            actor_hint=attempt.issuer if attempt else None,
        )
        raise
    # Verified, matched to app_user, linked and audited as a jwt-bearer assertion is (rcm.identity.server).
    result = await service.exchange(
        sessions, {"grant_type": JWT_BEARER, "assertion": id_token}, {}, request=request, control=control
    )
    if result.principal is None:
        raise LoginFailed(str(result.body.get("error", "invalid_grant")))
    return result.principal


async def _id_token(
    service: TokenService, sessions: Sessions, attempt: LoginAttempt | None, callback: Callback
) -> str:
    if attempt is None:
        raise LoginFailed("login_expired")
    if callback.error:
        raise LoginFailed(f"issuer_error:{callback.error[:60]}")
    if not callback.state or not hmac.compare_digest(callback.state.encode(), attempt.state.encode()):
        raise LoginFailed("state_mismatch")
    if not callback.code:
        raise LoginFailed("no_code")
    issuer = trusted_issuers(service.settings).get(attempt.issuer)
    if issuer is None or not issuer.browser_login:
        raise LoginFailed("issuer_not_trusted")
    id_token = await _exchange_code(service, sessions, issuer, callback.code, attempt.verifier)
    parsed = unverified_claims(id_token)
    # The nonce binds the ID token to this browser's attempt (OIDC Core 3.1.3.7 item 11). Read before the
    # signature check; the token service then verifies the very same bytes, so a forged nonce fails there.
    nonce = parsed[1].get("nonce") if parsed else None
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), attempt.nonce.encode()):
        raise LoginFailed("nonce_mismatch")
    return id_token


async def _exchange_code(
    service: TokenService, sessions: Sessions, issuer: TrustedIssuer, code: str, verifier: str
) -> str:
    redirect_uri = callback_url(service.settings)
    if issuer.jwks_uri is None:
        # The dev issuer runs in this process: the same redemption its token endpoint performs.
        try:
            return await redeem_code(
                service.settings,
                sessions,
                code=code,
                client_id=issuer.login_client_id,
                redirect_uri=redirect_uri,
                code_verifier=verifier,
            )
        except CodeRefused as exc:
            raise LoginFailed(f"code_refused:{exc}") from None
    try:
        _, token_endpoint = await service.issuer_keys.login_endpoints(issuer)
        async with httpx.AsyncClient(timeout=10.0) as http:
            response = await http.post(
                token_endpoint,
                data={
                    "grant_type": GRANT,
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "client_id": issuer.login_client_id,
                    "code_verifier": verifier,
                },
                headers={"Accept": "application/json"},
            )
        body = response.json()
    except (httpx.HTTPError, ValueError, KeyError, IssuerUnreachable):
        raise LoginFailed("issuer_unreachable") from None
    id_token = body.get("id_token") if response.status_code == 200 and isinstance(body, dict) else None
    if not isinstance(id_token, str):
        raise LoginFailed("code_refused")
    return id_token
