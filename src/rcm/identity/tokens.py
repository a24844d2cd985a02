"""Our access tokens: short-lived ES256 JWTs, and the mapping between their claims and ``Principal``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from rcm.config import Settings
from rcm.identity.keys import ALG, LEEWAY_SECONDS
from rcm.identity.principal import Principal, PrincipalKind, Role
from rcm.identity.scopes import parse_scopes
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantId

AUDIENCE = "rcm-api"


class InvalidToken(Exception):
    """The bearer token is malformed, expired, not ours or signed by a key we no longer publish.

    The message is a fixed phrase, never the token or any claim value.
    """


def token_endpoint_url(settings: Settings) -> str:
    return settings.base_url.rstrip("/") + "/oauth/token"


def issuer(settings: Settings) -> str:
    return settings.base_url.rstrip("/")


def principal_claims(principal: Principal) -> dict[str, Any]:
    """The claims that describe the caller (everything but iss/aud/iat/exp)."""
    claims: dict[str, Any] = {
        "sub": principal.subject,
        "jti": principal.token_id,
        "kind": str(principal.kind),
        "roles": sorted(str(r) for r in principal.roles),
        "scope": " ".join(sorted(principal.scopes)),
        "mfa": principal.mfa,
    }
    if principal.client_id is not None:
        claims["client_id"] = principal.client_id
    if principal.user_id is not None:
        claims["uid"] = str(principal.user_id)
    if principal.home_tenant is not None:
        claims["tenant"] = str(principal.home_tenant)
    if Role.AUDITOR in principal.roles:
        claims["auditor_tenants"] = [str(t) for t in principal.auditor_tenants]
        claims["all_tenants"] = principal.all_tenants
    return claims


def sign_access_token(
    principal: Principal,
    key: ECKey,
    settings: Settings,
    *,
    now: datetime | None = None,
    ttl: int | None = None,
) -> tuple[str, int]:
    """Sign an access token for ``principal``; returns (token, expires_in seconds)."""
    issued = int((now or utcnow()).timestamp())
    expires_in = ttl if ttl is not None else settings.access_token_ttl_seconds
    claims = {
        "iss": issuer(settings),
        "aud": AUDIENCE,
        "iat": issued,
        "nbf": issued,
        "exp": issued + expires_in,
        **principal_claims(principal),
    }
    token = jwt.encode({"alg": ALG, "kid": key.kid, "typ": "at+jwt"}, claims, key, algorithms=[ALG])
    return token, expires_in


def unverified_kid(token: str) -> str | None:
    from joserfc import jws

    try:
        kid = jws.extract_compact(token.encode()).headers().get("kid")
    except (JoseError, ValueError):
        raise InvalidToken("malformed token") from None
    return kid if isinstance(kid, str) else None


def verify_access_token(
    token: str, keys: KeySet, settings: Settings, *, now: datetime | None = None
) -> Principal:
    """Check signature (active or published key), iss, aud, exp/nbf; build the Principal from the claims."""
    return principal_from_claims(_verified_claims(token, keys, settings, now))


def _verified_claims(token: str, keys: KeySet, settings: Settings, now: datetime | None) -> dict[str, Any]:
    return verified_claims(token, keys, settings, audience=AUDIENCE, now=now, essential=("sub", "jti"))


def verified_claims(
    token: str,
    keys: KeySet,
    settings: Settings,
    *,
    audience: str,
    now: datetime | None = None,
    essential: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Claims of one of our own JWTs for ``audience`` (access token, browser session, login attempt): our
    signature (active or published key), our issuer, that audience, unexpired, ``essential`` claims there."""
    try:
        decoded = jwt.decode(token, keys, algorithms=[ALG])
    except (JoseError, ValueError):
        raise InvalidToken("signature or format invalid") from None
    options: dict[str, jwt.ClaimsOption] = {
        "iss": {"essential": True, "value": issuer(settings)},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
        **{name: {"essential": True} for name in essential},
    }
    registry = jwt.JWTClaimsRegistry(
        now=int(now.timestamp()) if now else None, leeway=LEEWAY_SECONDS, **options
    )
    try:
        registry.validate(decoded.claims)
    except JoseError:
        raise InvalidToken("claims invalid or expired") from None
    return decoded.claims


class VerifiedTokens:
    """Per-process memory of tokens already verified, so a client's next request skips the ECDSA check and
    the JOSE parsing (about a tenth of a one-statement request's CPU).

    An entry answers only for the exact token bytes, only against the very key set it was verified with
    (any key ring reload, every KEYRING_TTL_SECONDS or on a key change, forgets it) and only until the
    token's ``exp`` (without the leeway a fresh check would grant). Revocation is not this cache's business:
    the live status check still runs on every request. Failures are never remembered.
    """

    def __init__(self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._keys: KeySet | None = None
        self._cache: dict[str, tuple[float, Principal]] = {}

    def verify(self, token: str, keys: KeySet, settings: Settings) -> Principal:
        if keys is not self._keys:
            self._keys = keys
            self._cache = {}
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None and now < cached[0]:
            return cached[1]
        claims = _verified_claims(token, keys, settings, datetime.fromtimestamp(now, UTC))
        principal = principal_from_claims(claims)
        if len(self._cache) >= self.max_entries:
            self._cache = {}  # a flood of distinct tokens costs a re-verification, never memory
        self._cache[token] = (float(claims["exp"]), principal)
        return principal


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        roles = frozenset(Role(r) for r in claims.get("roles", []))
        tenant = claims.get("tenant")
        uid = claims.get("uid")
        return Principal(
            kind=PrincipalKind(claims["kind"]),
            subject=str(claims["sub"]),
            roles=roles,
            scopes=parse_scopes(str(claims.get("scope", "")).split()),
            token_id=str(claims["jti"]),
            client_id=claims.get("client_id"),
            user_id=uuid.UUID(uid) if uid else None,
            home_tenant=TenantId(uuid.UUID(tenant)) if tenant else None,
            mfa=bool(claims.get("mfa", False)),
            auditor_tenants=tuple(TenantId(uuid.UUID(t)) for t in claims.get("auditor_tenants", [])),
            all_tenants=bool(claims.get("all_tenants", False)),
        )
    except (KeyError, ValueError, TypeError):
        raise InvalidToken("claims invalid") from None
