"""Authentication on every request: a Bearer access token of ours, or a route opted out as public."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult, DefineMiddleware

from rcm.identity import audit_hooks
from rcm.identity.keys import KeyRing
from rcm.identity.principal import Principal
from rcm.identity.status import PrincipalStatus, RevokedToken
from rcm.identity.tokens import InvalidToken, VerifiedTokens, unverified_kid

PUBLIC_OPT_KEY = "public"
# Paths outside any route handler's opt: the OpenAPI documents and their renderers.
PUBLIC_PATHS = ["^/docs"]
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rcm"'}


def _unauthorized(error: str) -> NotAuthorizedException:
    return NotAuthorizedException(
        detail="A valid Bearer access token is required.",
        headers={"WWW-Authenticate": f'Bearer realm="rcm", error="{error}"'},
    )


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        state = connection.app.state
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
            keys = await keyring.verification_keys(sessions)
            try:
                principal = verified.verify(token, keys, keyring.settings)
            except InvalidToken:
                # Perhaps signed by a key newer than this process's ring: reload once (rate-limited), retry.
                reloaded = await keyring.verification_keys(sessions, kid=unverified_kid(token))
                if reloaded is keys:
                    raise
                principal = verified.verify(token, reloaded, keyring.settings)
        except InvalidToken:
            await audit_hooks.access_denied(
                sessions, request=audit_hooks.request_info(connection), principal=None, reason="invalid_token"
            )
            raise _unauthorized("invalid_token") from None
        # Genuine is not enough: the client or person must still be allowed, with the roles they have now.
        status: PrincipalStatus = state.identity_status
        try:
            principal = await status.check(sessions, principal)
        except RevokedToken:
            # Recorded against the (genuine) caller, on their practice's chain when they have one.
            await audit_hooks.access_denied(
                sessions, request=audit_hooks.request_info(connection), principal=principal, reason="revoked"
            )
            raise _unauthorized("invalid_token") from None
        return AuthenticationResult(user=principal, auth=token)


def authentication_middleware() -> DefineMiddleware:
    return DefineMiddleware(BearerTokenMiddleware, exclude=PUBLIC_PATHS, exclude_from_auth_key=PUBLIC_OPT_KEY)


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The authenticated caller of a request (the middleware guarantees one on non-public routes)."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise _unauthorized("invalid_token")
    return user
