"""Authentication on every request: a Bearer access token of ours, a browser session cookie of ours, or a
route opted out as public.

Both give the same ``Principal`` after the same live status check, so every guard and scope works alike. A
request with an Authorization header is a Bearer caller whatever cookies it carries. A cookie caller's
unsafe requests (POST, PUT, PATCH, DELETE) must carry the session's CSRF token (``rcm.identity.web_session``);
Bearer callers are not affected (a browser never attaches a Bearer token by itself). Pages (routes with
``opt["page"]``) send an anonymous or expired caller to ``/login?next=...`` instead of answering 401.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from joserfc.jwk import KeySet
from litestar.connection import ASGIConnection, Request
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware
from litestar.middleware._utils import should_bypass_middleware
from litestar.response.base import ASGIResponse
from litestar.types import Message, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.identity import audit_hooks
from rcm.identity.keys import KeyRing
from rcm.identity.principal import Principal
from rcm.identity.status import PrincipalStatus, RevokedToken
from rcm.identity.tokens import InvalidToken, VerifiedTokens, unverified_kid
from rcm.identity.web_session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    WebSession,
    cookie_name,
    make_cookie,
    sign_session,
    verify_session,
)

T = TypeVar("T")
PUBLIC_OPT_KEY = "public"
# Routes that render HTML for people: an anonymous caller is sent to the login page, not answered 401.
PAGE_OPT_KEY = "page"
LOGIN_PATH = "/login"
# Paths outside any route handler's opt: the OpenAPI documents and their renderers.
PUBLIC_PATHS = ["^/docs"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rcm"'}
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _unauthorized(error: str) -> NotAuthorizedException:
    return NotAuthorizedException(
        detail="A valid Bearer access token is required.",
        headers={"WWW-Authenticate": f'Bearer realm="rcm", error="{error}"'},
    )


def is_page(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return bool(handler is not None and handler.opt.get(PAGE_OPT_KEY))


def login_redirect(scope: Scope) -> ASGIResponse:
    """303 to the login page, naming where to come back to (our own path and query: never another site)."""
    target = str(scope.get("path", "/"))
    query = scope.get("query_string", b"")
    if query:
        target += "?" + query.decode("latin-1")
    return ASGIResponse(status_code=303, headers={"location": f"{LOGIN_PATH}?next={quote(target, safe='')}"})


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if should_bypass_middleware(
            exclude_http_methods=self.exclude_http_methods,
            exclude_opt_key=self.exclude_opt_key,
            exclude_path_pattern=self.exclude,
            scope=scope,
            scopes=self.scopes,
        ):
            await self.app(scope, receive, send)
            return
        try:
            result = await self.authenticate_request(ASGIConnection(scope))
        except NotAuthorizedException:
            if is_page(scope):
                await login_redirect(scope)(scope, receive, send)
                return
            raise
        scope["user"] = result.user
        scope["auth"] = result.auth
        if isinstance(result.auth, WebSession):
            if scope.get("method", "GET") not in SAFE_METHODS:
                await self._check_csrf(scope, receive, result.auth)
            send = await self._refreshing(scope, send, result.auth)
        await self.app(scope, receive, send)

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        state = connection.app.state
        session_cookie = connection.cookies.get(cookie_name(state.identity_keyring.settings, SESSION_COOKIE))
        if not header and session_cookie:
            return await self._from_cookie(connection, session_cookie)
        scheme, _, token = header.partition(" ")
        sessions = state.sessions
        if scheme.lower() != "bearer" or not token.strip():
            await audit_hooks.access_denied(
                sessions, request=audit_hooks.request_info(connection), principal=None, reason="no_token"
            )
            raise NotAuthorizedException(
                detail="A valid Bearer access token is required.", headers=_CHALLENGE
            )
        keyring: KeyRing = state.identity_keyring
        verified: VerifiedTokens = state.identity_verified_tokens
        token = token.strip()
        try:
            principal = await _with_keys(
                keyring, sessions, token, lambda keys: verified.verify(token, keys, keyring.settings)
            )
        except InvalidToken:
            await audit_hooks.access_denied(
                sessions, request=audit_hooks.request_info(connection), principal=None, reason="invalid_token"
            )
            raise _unauthorized("invalid_token") from None
        principal = await self._live(connection, principal)
        return AuthenticationResult(user=principal, auth=token)

    async def _live(self, connection: ASGIConnection[Any, Any, Any, Any], principal: Principal) -> Principal:
        """Genuine is not enough: the client or person must still be allowed, with the roles they have now."""
        state = connection.app.state
        status: PrincipalStatus = state.identity_status
        try:
            return await status.check(state.sessions, principal)
        except RevokedToken:
            # Recorded against the (genuine) caller, on their practice's chain when they have one.
            await audit_hooks.access_denied(
                state.sessions,
                request=audit_hooks.request_info(connection),
                principal=principal,
                reason="revoked",
            )
            raise _unauthorized("invalid_token") from None

    async def _from_cookie(
        self, connection: ASGIConnection[Any, Any, Any, Any], cookie: str
    ) -> AuthenticationResult:
        state = connection.app.state
        keyring: KeyRing = state.identity_keyring
        try:
            session = await _with_keys(
                keyring, state.sessions, cookie, lambda keys: verify_session(cookie, keys, keyring.settings)
            )
            if await state.web_sessions.ended(state.sessions, session):
                raise InvalidToken("session ended")
        except InvalidToken:
            await audit_hooks.access_denied(
                state.sessions,
                request=audit_hooks.request_info(connection),
                principal=None,
                reason="invalid_session",
            )
            raise _unauthorized("invalid_token") from None
        principal = await self._live(connection, session.principal)
        if principal is not session.principal:
            session = WebSession(
                principal, session.sid, session.csrf, session.auth_time, session.issued_at, session.expires_at
            )
        return AuthenticationResult(user=principal, auth=session)

    async def _check_csrf(self, scope: Scope, receive: Receive, session: WebSession) -> None:
        """The session's CSRF token, from the X-CSRF-Token header or the form's ``_csrf`` field (the parsed
        form stays cached in the scope for the handler)."""
        request: Request[Any, Any, Any] = Request(scope, receive)
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.content_type[0] in _FORM_TYPES:
            value = (await request.form()).get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
        if session.csrf_matches(presented):
            return
        state = request.app.state
        await audit_hooks.access_denied(
            state.sessions,
            request=audit_hooks.request_info(request),
            principal=session.principal,
            reason="csrf",
        )
        raise PermissionDeniedException(detail="The form is missing its CSRF token or it does not match.")

    async def _refreshing(self, scope: Scope, send: Send, session: WebSession) -> Send:
        """Slide the idle timeout: a session token older than a minute is replaced on this response (unless
        the response sets the cookie itself, as logout does)."""
        now = int(time.time())
        if not session.due_for_refresh(now):
            return send
        state = scope["app"].state
        keyring: KeyRing = state.identity_keyring
        key = await keyring.signing_key(state.sessions)
        token, fresh = sign_session(
            session.principal,
            key,
            keyring.settings,
            auth_time=session.auth_time,
            sid=session.sid,
            csrf=session.csrf,
        )
        cookie = make_cookie(
            keyring.settings, SESSION_COOKIE, token, max_age=fresh.expires_at - fresh.issued_at
        )
        name = cookie.key + "="

        async def send_refreshed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if not any(v.startswith(name) for v in headers.getall("set-cookie", [])):
                    headers.add("set-cookie", cookie.to_header(header=""))
            await send(message)

        return send_refreshed


async def _with_keys(
    keyring: KeyRing,
    sessions: async_sessionmaker[AsyncSession],
    token: str,
    verify: Callable[[KeySet], T],
) -> T:
    """``verify`` against the key ring; a token signed by a key newer than this process's ring reloads it
    once (rate-limited) and is verified again. ``InvalidToken`` when it still fails."""
    keys = await keyring.verification_keys(sessions)
    try:
        return verify(keys)
    except InvalidToken:
        reloaded = await keyring.verification_keys(sessions, kid=unverified_kid(token))
        if reloaded is keys:
            raise
        return verify(reloaded)


def authentication_middleware() -> DefineMiddleware:
    return DefineMiddleware(BearerTokenMiddleware, exclude=PUBLIC_PATHS, exclude_from_auth_key=PUBLIC_OPT_KEY)


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The authenticated caller of a request (the middleware guarantees one on non-public routes)."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise _unauthorized("invalid_token")
    return user


def current_web_session(connection: ASGIConnection[Any, Any, Any, Any]) -> WebSession | None:
    """The browser session of a cookie caller (None for a Bearer caller or a public route)."""
    auth = connection.scope.get("auth")
    return auth if isinstance(auth, WebSession) else None
