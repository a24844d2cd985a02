"""DEVELOPMENT ONLY: the dev issuer's side of the OIDC authorization code flow with PKCE (RFC 7636, S256).

The dev issuer has no passwords: its login page mints a code for any email typed in. The code is a JWS of
the dev issuer's key that binds what the authorization request named (client, redirect URI, nonce, PKCE
challenge) and lives ``CODE_TTL_SECONDS``; the token endpoint accepts it once (its ``jti`` goes into the
table of used assertions, as our client assertions' do), only with the verifier whose S256 hash is the
challenge, for the same client and redirect URI. Refused in production with the rest of the dev issuer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.config import Settings
from rcm.identity.clients_repository import remember_assertion
from rcm.identity.oidc import (
    DEV_ALG,
    DEV_AUDIENCE,
    DEV_ISSUER,
    dev_issuer_jwks,
    dev_issuer_key,
    mint_dev_id_token,
)
from rcm.identity.tokens import issuer
from rcm.kit.db import platform_transaction
from rcm.kit.models import utcnow

CODE_TTL_SECONDS = 60
CODE_AUDIENCE = "rcm-dev-issuer:code"
# The used-assertion table's client column for spent codes (a namespace no API client id can take).
USED_CODES = "rcm-dev-issuer:code"
# Where our own browser login receives the code (rcm.web registers the route); the one redirect URI the dev
# issuer accepts, so a code can never be sent anywhere else.
CALLBACK_PATH = "/auth/callback"
# RFC 7636 §4.1: 43..128 characters of the unreserved set; the S256 challenge is always 43.
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
MAX_STATE = 512


class CodeRefused(Exception):
    """The code, its verifier, client or redirect URI do not match (the message is an OAuth error code)."""


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def callback_url(settings: Settings) -> str:
    return issuer(settings) + CALLBACK_PATH


@dataclass(frozen=True, slots=True)
class AuthorizeRequest:
    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    code_challenge: str


def authorize_request(settings: Settings, params: Mapping[str, str | None]) -> AuthorizeRequest:
    """The authorization request's parameters, checked; ``ValueError`` naming the first one at fault."""
    if params.get("response_type") != "code":
        raise ValueError("response_type must be code")
    if params.get("client_id") != DEV_AUDIENCE:
        raise ValueError(f"client_id must be {DEV_AUDIENCE}")
    if params.get("redirect_uri") != callback_url(settings):
        raise ValueError("redirect_uri is not registered")
    if params.get("code_challenge_method") != "S256":
        raise ValueError("code_challenge_method must be S256")
    challenge = params.get("code_challenge") or ""
    if not _CHALLENGE.match(challenge):
        raise ValueError("code_challenge must be an S256 challenge")
    state, nonce = params.get("state") or "", params.get("nonce") or ""
    if not (0 < len(state) <= MAX_STATE and 0 < len(nonce) <= MAX_STATE):
        raise ValueError("state and nonce are required")
    return AuthorizeRequest(DEV_AUDIENCE, callback_url(settings), state, nonce, challenge)


def issue_code(settings: Settings, request: AuthorizeRequest, *, email: str, mfa: bool) -> str:
    key = dev_issuer_key(settings)
    now = int(utcnow().timestamp())
    claims = {
        "iss": DEV_ISSUER,
        "aud": CODE_AUDIENCE,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + CODE_TTL_SECONDS,
        "email": email,
        "mfa": mfa,
        "cid": request.client_id,
        "ruri": request.redirect_uri,
        "nonce": request.nonce,
        "cc": request.code_challenge,
    }
    return jwt.encode({"alg": DEV_ALG, "kid": key.kid, "typ": "dev-code"}, claims, key, algorithms=[DEV_ALG])


async def redeem_code(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    code: str,
    client_id: str,
    redirect_uri: str,
    code_verifier: str,
) -> str:
    """The ID token for a code presented with its PKCE verifier, once; ``CodeRefused`` otherwise."""
    keys = KeySet.import_key_set(dev_issuer_jwks(settings))  # type: ignore[arg-type]
    try:
        decoded = jwt.decode(code, keys, algorithms=[DEV_ALG])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": DEV_ISSUER},
            aud={"essential": True, "value": CODE_AUDIENCE},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError):
        raise CodeRefused("invalid_grant") from None
    claims = decoded.claims
    if claims.get("cid") != client_id or claims.get("ruri") != redirect_uri:
        raise CodeRefused("invalid_grant")
    if not _VERIFIER.match(code_verifier) or not hmac.compare_digest(s256(code_verifier), str(claims["cc"])):
        raise CodeRefused("invalid_grant")
    async with platform_transaction(sessions) as session:
        first = await remember_assertion(
            session,
            client_id=USED_CODES,
            jti=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            keep_expired_for=timedelta(seconds=30),
        )
    if not first:
        raise CodeRefused("invalid_grant")  # RFC 6749 §4.1.2: a code is used once
    return mint_dev_id_token(
        settings, email=str(claims["email"]), mfa=bool(claims["mfa"]), nonce=str(claims["nonce"])
    )
