"""Trusted OIDC issuers (external and the built-in dev issuer), their JWKS, and people's ID tokens.

An ID token is accepted only from an issuer configured in ``RCM_OIDC_ISSUERS`` (or the dev issuer in a
non-production deployment), signed by a key in that issuer's JWKS, for that issuer's configured audience.
Roles never come from the issuer: they come from our ``app_user`` row.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.config import Settings
from rcm.identity.people_repository import person_by_issuer_email, person_by_subject
from rcm.kit.models import utcnow
from rcm.tenancy.models import AppUser

DEV_ISSUER = "rcm-dev-issuer"
DEV_AUDIENCE = "rcm-dev"
DEV_ALG = "ES256"
JWKS_TTL_SECONDS = 600.0
JWKS_UNKNOWN_KID_REFETCH_SECONDS = 30.0
# amr values (RFC 8176) that mean a second factor was used; acr values some issuers send instead.
MFA_AMR = frozenset({"mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "retina", "sc"})
MFA_ACR = frozenset({"mfa", "http://schemas.openid.net/pape/policies/2007/06/multi-factor"})


class IssuerUnreachable(Exception):
    """An issuer's discovery document could not be fetched or does not describe it."""


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    issuer: str
    audience: str
    jwks_uri: str | None  # None = the built-in dev issuer (keys read in-process)
    # Browser login (authorization code with PKCE): our client id at the issuer (default: the audience) and
    # its endpoints, configured or read from its discovery document (``discovery``).
    client_id: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    discovery: bool = False

    @property
    def browser_login(self) -> bool:
        """Can a browser log in through this issuer (endpoints known or discoverable)?"""
        return (
            self.jwks_uri is None
            or self.discovery
            or bool(self.authorization_endpoint and self.token_endpoint)
        )

    @property
    def login_client_id(self) -> str:
        return self.client_id or self.audience


def dev_issuer_active(settings: Settings) -> bool:
    """The dev issuer mints ID tokens without a password: never in production, whatever the flag says."""
    return settings.dev_issuer_enabled and settings.env != "prod"


def trusted_issuers(settings: Settings) -> dict[str, TrustedIssuer]:
    try:
        entries = json.loads(settings.oidc_issuers)
        issuers = {str(e["issuer"]): _trusted_issuer(e) for e in entries}
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(
            "RCM_OIDC_ISSUERS must be a JSON list of {issuer, audience, jwks_uri} objects"
        ) from exc
    if dev_issuer_active(settings):
        issuers[DEV_ISSUER] = TrustedIssuer(DEV_ISSUER, DEV_AUDIENCE, None)
    return issuers


def _optional(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    return str(value) if value else None


def _trusted_issuer(entry: dict[str, Any]) -> TrustedIssuer:
    return TrustedIssuer(
        str(entry["issuer"]),
        str(entry["audience"]),
        str(entry["jwks_uri"]),
        client_id=_optional(entry, "client_id"),
        authorization_endpoint=_optional(entry, "authorization_endpoint"),
        token_endpoint=_optional(entry, "token_endpoint"),
        discovery=entry.get("discovery") is True,
    )


def mfa_from_claims(claims: dict[str, Any]) -> bool:
    amr = claims.get("amr")
    if isinstance(amr, list) and MFA_AMR & {str(a) for a in amr}:
        return True
    return str(claims.get("acr", "")) in MFA_ACR


# --- the built-in dev issuer's key ------------------------------------------------------------------------


def _dev_key_path(settings: Settings) -> Path:
    return settings.data_dir / "dev-oidc-key.json"


def dev_issuer_key(settings: Settings) -> ECKey:
    """The dev issuer's private key, kept in RCM_DATA_DIR so the API and the CLI agree on it (dev only)."""
    if not dev_issuer_active(settings):
        raise RuntimeError("the dev OIDC issuer is disabled (RCM_DEV_ISSUER_ENABLED / RCM_ENV=prod)")
    path = _dev_key_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ECKey.generate_key("P-256", private=True, auto_kid=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                json.dump(key.as_dict(private=True), handle)
    data = json.loads(path.read_text())
    return ECKey.import_key(data, parameters={"alg": DEV_ALG})


def dev_issuer_jwks(settings: Settings) -> dict[str, Any]:
    key = dev_issuer_key(settings)
    return {"keys": [{**key.as_dict(private=False), "alg": DEV_ALG, "use": "sig"}]}


def mint_dev_id_token(
    settings: Settings, *, email: str, mfa: bool, ttl_seconds: int = 300, nonce: str | None = None
) -> str:
    """An ID token for ``email`` from the dev issuer. DEV ONLY: there is no password; anyone who can reach
    the dev issuer can be anyone. ``dev_issuer_key`` refuses to run in production."""
    key = dev_issuer_key(settings)
    now = int(utcnow().timestamp())
    claims = {
        "iss": DEV_ISSUER,
        "aud": DEV_AUDIENCE,
        "sub": email,
        "email": email,
        "email_verified": True,
        "iat": now,
        "exp": now + ttl_seconds,
        "amr": ["pwd", "mfa"] if mfa else ["pwd"],
    }
    if nonce is not None:
        claims["nonce"] = nonce  # OIDC Core 3.1.2.1: echoed from the authorization request
    return jwt.encode({"alg": DEV_ALG, "kid": key.kid}, claims, key, algorithms=[DEV_ALG])


# --- JWKS of trusted issuers ------------------------------------------------------------------------------


class IssuerKeyCache:
    """JWKS per trusted issuer, fetched over HTTPS and cached; an unknown kid refetches (rate-limited)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cache: dict[str, tuple[KeySet, float]] = {}
        self._last_refetch: dict[str, float] = {}
        self._endpoints: dict[str, tuple[tuple[str, str], float]] = {}
        self._endpoint_failures: dict[str, float] = {}

    async def login_endpoints(self, issuer: TrustedIssuer) -> tuple[str, str]:
        """(authorization_endpoint, token_endpoint) of an issuer for browser login: as configured, else from
        its discovery document (OIDC Discovery 1.0 §4, cached like its keys). The dev issuer's are ours."""
        if issuer.jwks_uri is None:
            base = self.settings.base_url.rstrip("/")
            return f"{base}/dev/oidc/authorize", f"{base}/dev/oidc/token"
        if issuer.authorization_endpoint and issuer.token_endpoint:
            return issuer.authorization_endpoint, issuer.token_endpoint
        now = time.monotonic()
        cached = self._endpoints.get(issuer.issuer)
        if cached is not None and now - cached[1] < JWKS_TTL_SECONDS:
            return cached[0]
        failed = self._endpoint_failures.get(issuer.issuer)
        if failed is not None and now - failed < JWKS_UNKNOWN_KID_REFETCH_SECONDS:
            # A failed fetch is not retried for every anonymous /login: one attempt per interval.
            raise IssuerUnreachable(issuer.issuer)
        try:
            async with httpx.AsyncClient(timeout=5.0) as http:
                response = await http.get(issuer.issuer.rstrip("/") + "/.well-known/openid-configuration")
                response.raise_for_status()
                document = response.json()
            # §4.3: the document must name the issuer it was fetched for.
            if not isinstance(document, dict) or document.get("issuer") != issuer.issuer:
                raise ValueError("the discovery document names another issuer")
            endpoints = (str(document["authorization_endpoint"]), str(document["token_endpoint"]))
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self._endpoint_failures[issuer.issuer] = now
            raise IssuerUnreachable(issuer.issuer) from exc
        self._endpoint_failures.pop(issuer.issuer, None)
        self._endpoints[issuer.issuer] = (endpoints, now)
        return endpoints

    async def keys_for(self, issuer: TrustedIssuer, kid: str | None) -> KeySet:
        if issuer.jwks_uri is None:
            return KeySet.import_key_set(dev_issuer_jwks(self.settings))  # type: ignore[arg-type]
        now = time.monotonic()
        cached = self._cache.get(issuer.issuer)
        if cached is not None and now - cached[1] < JWKS_TTL_SECONDS:
            known = {k.kid for k in cached[0].keys}
            recently = now - self._last_refetch.get(issuer.issuer, 0.0) < JWKS_UNKNOWN_KID_REFETCH_SECONDS
            if kid is None or kid in known or recently:
                return cached[0]
        self._last_refetch[issuer.issuer] = now
        async with httpx.AsyncClient(timeout=5.0) as http:
            response = await http.get(issuer.jwks_uri)
            response.raise_for_status()
            key_set = KeySet.import_key_set(response.json())
        self._cache[issuer.issuer] = (key_set, now)
        return key_set


def unverified_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a JWS without checking it: only to decide which keys and rows to load."""
    from joserfc import jws

    try:
        obj = jws.extract_compact(token.encode())
        claims = json.loads(obj.payload)
    except (JoseError, ValueError, UnicodeError):
        return None
    if not isinstance(claims, dict):
        return None
    return dict(obj.headers()), claims


async def find_app_user(session: AsyncSession, claims: dict[str, Any]) -> AppUser | None:
    """Map an ID token to our user: by (iss, sub); else (first login) by an email THIS issuer verified.

    The email fallback never crosses issuers: a user provisioned for one issuer cannot be reached through
    another, or any trusted issuer that lets people claim an address would log in as whoever holds it
    (an administrator included). Called before the token is verified: only a lookup, nothing is trusted.
    """
    iss, sub = claims.get("iss"), claims.get("sub")
    if not isinstance(iss, str) or not isinstance(sub, str):
        return None
    user = await person_by_subject(session, issuer=iss, subject=sub)
    email = claims.get("email")
    if user is None and isinstance(email, str) and claims.get("email_verified") is True:
        user = await person_by_issuer_email(session, issuer=iss, email=email)
    return user
