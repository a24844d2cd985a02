"""Browser login and logout routes: ``GET /login``, ``GET /auth/callback``, ``POST /logout``.

The flow itself (PKCE, state, nonce, code exchange, ID-token verification) is ``rcm.identity.browser_login``;
these routes move the browser and the cookies.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect, Template

from rcm.identity import audit_hooks, browser_login
from rcm.identity.browser_login import Callback, LoginFailed, browser_issuers, safe_next
from rcm.identity.keys import KeyRing
from rcm.identity.middleware import PUBLIC_OPT_KEY, current_principal, current_web_session
from rcm.identity.server import TokenService
from rcm.identity.tokens import InvalidToken
from rcm.identity.web_session import (
    LOGIN_COOKIE,
    LOGIN_TTL_SECONDS,
    SESSION_COOKIE,
    LoginAttempt,
    cookie_name,
    expired_cookie,
    make_cookie,
    sign_login_attempt,
    sign_session,
    verify_login_attempt,
)
from rcm.kit.control import control_sessions
from rcm.kit.db import platform_transaction
from rcm.web.render import PAGE_EXCEPTION_HANDLERS, PAGE_OPT, page

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"


class LoginController(Controller):
    path = ""
    tags = ["browser login"]
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get(LOGIN_PATH, opt={PUBLIC_OPT_KEY: True, **PAGE_OPT})
    async def login(
        self,
        *,
        request: Request[Any, Any, Any],
        state: State,
        next_path: Annotated[str | None, QueryParameter(name="next")] = None,
        issuer: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """Send the browser to the chosen issuer (or the only one), or let the person choose."""
        target = safe_next(next_path)
        issuers = browser_issuers(state.settings)
        chosen = next((i for i in issuers if i.issuer == issuer), None)
        if chosen is None and len(issuers) == 1 and issuer is None:
            chosen = issuers[0]
        if chosen is None:
            return page(
                request,
                "login.html",
                title="Sign in",
                issuers=[i.issuer for i in issuers],
                next_path=target,
                status_code=200 if issuer is None else 400,
            )
        service: TokenService = state.identity_tokens
        url, attempt = await browser_login.start(service, chosen, target)
        keyring: KeyRing = state.identity_keyring
        key = await keyring.signing_key(state.sessions)
        cookie = make_cookie(
            state.settings,
            LOGIN_COOKIE,
            sign_login_attempt(attempt, key, state.settings),
            max_age=LOGIN_TTL_SECONDS,
        )
        return Redirect(url, status_code=303, cookies=[cookie])

    @get("/auth/callback", opt={PUBLIC_OPT_KEY: True, **PAGE_OPT})
    async def callback(
        self,
        *,
        request: Request[Any, Any, Any],
        state: State,
        code: FromQuery[str | None] = None,
        callback_state: Annotated[str | None, QueryParameter(name="state")] = None,
        error: FromQuery[str | None] = None,
        error_description: FromQuery[str | None] = None,
        iss: FromQuery[str | None] = None,
        session_state: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """The issuer sends the browser back here with a code: check, exchange, open the session."""
        settings = state.settings
        keyring: KeyRing = state.identity_keyring
        attempt = await _login_attempt(request, keyring)
        try:
            principal = await browser_login.finish(
                state.identity_tokens,
                state.sessions,
                attempt,
                Callback(code=code, state=callback_state, error=error),
                request=audit_hooks.request_info(request),
                control=control_sessions(state),
            )
        except LoginFailed:
            response = page(request, "login_failed.html", title="Sign-in did not complete", status_code=400)
            response.cookies.append(expired_cookie(settings, LOGIN_COOKIE))
            return response
        assert attempt is not None
        key = await keyring.signing_key(state.sessions)
        token, session = sign_session(principal, key, settings)
        cookies = [
            make_cookie(settings, SESSION_COOKIE, token, max_age=session.expires_at - session.issued_at),
            expired_cookie(settings, LOGIN_COOKIE),
        ]
        return Redirect(safe_next(attempt.next), status_code=303, cookies=cookies)

    @post(LOGOUT_PATH, status_code=200, opt=PAGE_OPT)
    async def logout(self, request: Request[Any, Any, Any], state: State) -> Template:
        """End the browser session (the CSRF token is checked by the authentication middleware)."""
        session = current_web_session(request)
        if session is not None:
            async with platform_transaction(state.sessions) as db:
                await state.web_sessions.end(db, session)
                await audit_hooks.logout(
                    db,
                    request=audit_hooks.request_info(request),
                    principal=current_principal(request),
                    session_id=session.sid,
                )
        response = page(request, "signed_out.html", title="Signed out")
        response.cookies.append(expired_cookie(state.settings, SESSION_COOKIE))
        # The page is shown signed out: no name, no form token of the ended session.
        response.context.update(principal=None, csrf_token="")
        return response


async def _login_attempt(request: Request[Any, Any, Any], keyring: KeyRing) -> LoginAttempt | None:
    raw = request.cookies.get(cookie_name(keyring.settings, LOGIN_COOKIE))
    if not raw:
        return None
    try:
        keys = await keyring.verification_keys(request.app.state.sessions)
        return verify_login_attempt(raw, keys, keyring.settings)
    except InvalidToken:
        return None
