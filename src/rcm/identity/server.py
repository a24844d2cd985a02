"""The OAuth2 token endpoint, on authlib's ``AuthorizationServer``.

authlib is synchronous; our database is not. So a request runs in three steps:
1. ``_prepare`` (async) loads what authlib will ask for, keyed by the *unverified* request: the API client
   named by the Basic header or the client assertion's ``sub`` (through the ``client_lookup`` RLS policy),
   the trusted issuer and its JWKS named by the ID token's ``iss``, and our user for its (iss, sub) or email.
2. authlib (sync) verifies everything — secret, assertion signature and claims, ID token — and calls our
   token generator. Nothing from step 1 is trusted until authlib has checked the credential it came from.
3. The async tail writes, in ONE transaction, the client assertion's ``jti`` (single use), a person's
   subject on first login, and the success event; the token is returned only if that commits. A refusal
   is recorded in a transaction of its own.

Grants: ``client_credentials`` for practice API clients (``client_secret_basic`` or ``private_key_jwt``,
RFC 7523 §2.2) and ``urn:ietf:params:oauth:grant-type:jwt-bearer`` (RFC 7523 §2.1) for people, whose
assertion is an OIDC ID token from a trusted issuer.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientCredentialsGrant,
    InvalidClientError,
    InvalidGrantError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion, JWTBearerGrant
from joserfc.jwk import ECKey, KeySet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.audit.events import RequestInfo
from rcm.config import Settings
from rcm.identity import audit_hooks
from rcm.identity.clients import lookup_client_for_token_endpoint, secret_matches, tenant_is_active
from rcm.identity.clients_repository import remember_assertion
from rcm.identity.keys import KeyRing
from rcm.identity.models import ApiClient, ApiClientStatus
from rcm.identity.oidc import (
    IssuerKeyCache,
    TrustedIssuer,
    find_app_user,
    mfa_from_claims,
    trusted_issuers,
    unverified_claims,
)
from rcm.identity.people_repository import link_subject
from rcm.identity.principal import PRACTICE_ROLES, Principal, PrincipalKind, Role
from rcm.identity.scopes import ALL_SCOPES, parse_scopes, scopes_for_roles
from rcm.identity.tokens import sign_access_token, token_endpoint_url
from rcm.kit.db import platform_transaction
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import AppUser
from rcm.tenancy.service import system_assigned_tenants

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# A client assertion is a one-shot credential: it may not claim a longer life than this.
MAX_ASSERTION_LIFETIME_SECONDS = 600
# Clock skew allowed on a client assertion's exp. Its jti is remembered at least this long past exp: a replay
# that authlib still accepts inside the window must find the jti (RFC 7523 §3, item 7).
ASSERTION_LEEWAY_SECONDS = 30

Sessions = async_sessionmaker[AsyncSession]


@dataclass(slots=True)
class _Prepared:
    """What the async half loaded for authlib, and what authlib left for the async tail."""

    signing_key: ECKey
    client: ApiClient | None = None
    client_tenant_active: bool = False  # a suspended or offboarded practice's clients get no token
    issuer: TrustedIssuer | None = None
    issuer_keys: KeySet | None = None
    user: AppUser | None = None
    assigned_tenants: tuple[TenantId, ...] = ()  # an auditor's scope, besides a home tenant
    id_claims: dict[str, Any] = field(default_factory=dict)
    assertion_jti: tuple[str, str, int] | None = None  # (client_id, jti, exp)
    issued: Principal | None = None


class _OAuthClient:
    """authlib's ClientMixin over an ``api_client`` row."""

    def __init__(self, row: ApiClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(client_secret, self.row.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method == self.row.auth_method

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class _IssuerClient:
    """The 'client' of the jwt-bearer grant: a trusted OIDC issuer vouching for a person."""

    def __init__(self, issuer: TrustedIssuer) -> None:
        self.issuer = issuer

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == JWT_BEARER


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, form: dict[str, str]) -> None:
        self._form = form

    @property
    def data(self) -> dict[str, str]:
        return self._form

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {k: [v] for k, v in self._form.items()}


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, uri: str, form: dict[str, str], headers: Mapping[str, str]) -> None:
        super().__init__("POST", uri, headers=headers)
        self._form = form
        self.payload = _Payload(form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class _PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, settings: Settings, prepared: _Prepared) -> None:
        super().__init__(validate_jti=True, leeway=ASSERTION_LEEWAY_SECONDS)
        self.settings = settings
        self.prepared = prepared

    def get_audiences(self) -> list[str]:
        # RFC 7523 §3: the assertion names the token endpoint as its audience.
        return [token_endpoint_url(self.settings)]

    def resolve_client_public_key(self, client: _OAuthClient) -> KeySet:
        if not client.row.jwks:
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(client.row.jwks)  # type: ignore[arg-type]

    def verify_claims(self, claims: dict[str, Any]) -> None:
        super().verify_claims(claims)
        now = int(datetime.now(UTC).timestamp())
        if int(claims["exp"]) - now > MAX_ASSERTION_LIFETIME_SECONDS:
            raise InvalidClientError(description="The client assertion lives too long.")

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        # Recorded after authlib accepts the assertion (the async tail); a second use is refused there.
        self.prepared.assertion_jti = (str(claims["sub"]), str(jti), int(claims["exp"]))
        return True


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "private_key_jwt"]


class _PersonJWTBearer(JWTBearerGrant):  # type: ignore[misc]
    CLAIMS_OPTIONS = {
        "iss": {"essential": True},
        "aud": {"essential": True},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }

    @property
    def prepared(self) -> _Prepared:
        prepared: _Prepared = self.server.prepared
        return prepared

    def resolve_issuer_client(self, issuer: str) -> _IssuerClient | None:
        trusted = self.prepared.issuer
        if trusted is None or trusted.issuer != issuer:
            return None
        return _IssuerClient(trusted)

    def resolve_client_public_key(self, client: _IssuerClient) -> KeySet:
        if self.prepared.issuer_keys is None:
            raise InvalidGrantError(description="The issuer's keys are unavailable.")
        return self.prepared.issuer_keys

    def get_audiences(self) -> list[str]:
        return [self.prepared.issuer.audience] if self.prepared.issuer else []

    def process_assertion_claims(self, assertion: str) -> dict[str, Any]:
        claims: dict[str, Any] = dict(super().process_assertion_claims(assertion))
        self.prepared.id_claims = claims
        return claims

    def authenticate_user(self, subject: str) -> AppUser | None:
        user = self.prepared.user
        if user is None or not user.active:
            return None
        return user

    def has_granted_permission(self, client: _IssuerClient, user: AppUser) -> bool:
        return True


class RCMAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """One per token request: it holds that request's pre-loaded rows (authlib calls back synchronously)."""

    def __init__(self, settings: Settings, prepared: _Prepared) -> None:
        super().__init__(scopes_supported=sorted(ALL_SCOPES))
        self.settings = settings
        self.prepared = prepared
        self.register_grant(_ClientCredentials)
        self.register_grant(_PersonJWTBearer)
        self.register_client_auth_method("private_key_jwt", _PrivateKeyJWT(settings, prepared))
        self.register_token_generator("default", self._generate_token)

    def query_client(self, client_id: str) -> _OAuthClient | None:
        row = self.prepared.client
        if row is None or row.client_id != client_id or row.status != ApiClientStatus.ACTIVE:
            return None
        if not self.prepared.client_tenant_active:
            return None  # authlib answers invalid_client, as for an unknown client
        return _OAuthClient(row)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Access tokens are self-contained JWTs: nothing to store (the audit event records the jti)."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal bus here; the async tail audits."""

    def create_oauth2_request(self, request: _Request) -> _Request:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]] | dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        out = dict(headers or {})
        body = dict(body or {})
        # RFC 6749 §5.2: a client that failed to authenticate gets 401 with a challenge.
        if body.get("error") == "invalid_client":
            status = 401
            out["WWW-Authenticate"] = 'Basic realm="rcm"'
        out["Cache-Control"] = "no-store"
        out["Pragma"] = "no-cache"
        return status, body, out

    def _generate_token(  # noqa: PLR0917 - authlib calls token generators with these keywords
        self,
        grant_type: str,
        client: _OAuthClient | _IssuerClient,
        user: AppUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        requested = set(scope_to_list(scope) or [])
        jti = uuid.uuid4().hex
        if isinstance(client, _OAuthClient):
            allowed = frozenset(client.row.scopes)
            granted = frozenset(requested) if requested else allowed
            if not granted <= allowed:
                raise InvalidScopeError(description="The client is not registered for a requested scope.")
            principal = Principal(
                kind=PrincipalKind.CLIENT,
                subject=str(client.row.id),
                roles=frozenset({Role.PRACTICE_CLIENT}),
                scopes=parse_scopes(granted),  # granted is within allowed: every string names a scope
                token_id=jti,
                client_id=client.row.client_id,
                home_tenant=TenantId(client.row.tenant_id),
            )
        else:
            assert user is not None
            principal = _person_principal(
                user, self.prepared.id_claims, requested, jti, self.prepared.assigned_tenants
            )
        token, ttl = sign_access_token(principal, self.prepared.signing_key, self.settings)
        self.prepared.issued = principal
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": " ".join(sorted(principal.scopes)),
        }


def _person_principal(
    user: AppUser,
    id_claims: dict[str, Any],
    requested: set[str],
    jti: str,
    assigned: tuple[TenantId, ...] = (),
) -> Principal:
    roles = frozenset(Role(r) for r in user.roles if r in Role._value2member_map_)
    allowed = scopes_for_roles(roles)
    granted = frozenset(requested) if requested else allowed
    if not granted <= allowed:
        raise InvalidScopeError(description="A requested scope is not available to this user's roles.")
    home = TenantId(user.home_tenant_id) if user.home_tenant_id else None
    auditor = Role.AUDITOR in roles
    # An auditor sees their home tenant and the tenants they are assigned to; one with neither is the
    # billing company's own auditor and sees every tenant.
    audited = tuple(dict.fromkeys([*([home] if home else []), *assigned])) if auditor else ()
    return Principal(
        kind=PrincipalKind.USER,
        subject=str(user.id),
        roles=roles,
        scopes=parse_scopes(granted),  # granted is within allowed: every string names a scope
        token_id=jti,
        user_id=user.id,
        # Only practice people carry a tenant in the token; staff reach tenants through assignments.
        home_tenant=home if roles & PRACTICE_ROLES else None,
        mfa=mfa_from_claims(id_claims),
        auditor_tenants=audited,
        all_tenants=auditor and not audited,
    )


# authlib's own texts that mislead (a missing grant_type called unsupported, "cannot authenticate with
# methods" when no credentials were sent, or whether a client id exists, which an attacker should not learn).
_AUTHLIB_CLIENT_TEXTS = ("The client does not exist on this server.", "The client cannot authenticate with")
GRANT_TYPES_TEXT = f"grant_type must be client_credentials or {JWT_BEARER}."


def rfc6749_wording(
    body: dict[str, Any], form: Mapping[str, str], headers: Mapping[str, str]
) -> dict[str, Any]:
    """An RFC 6749 §5.2 error body whose description names the parameter or header at fault."""
    error = body.get("error")
    description = str(body.get("error_description") or "")
    if error == "unsupported_grant_type":
        if not form.get("grant_type"):
            return {"error": "invalid_request", "error_description": "The grant_type parameter is required."}
        return {"error": error, "error_description": GRANT_TYPES_TEXT}
    if error == "invalid_client" and (not description or description.startswith(_AUTHLIB_CLIENT_TEXTS)):
        sent = "client_assertion" in form or any(k.lower() == "authorization" for k in headers)
        text = (
            "Client authentication failed (Authorization header or client_assertion)."
            if sent
            else "No client authentication: send an HTTP Basic Authorization header (client_secret_basic) "
            "or a client_assertion (private_key_jwt)."
        )
        return {"error": error, "error_description": text}
    return body


@dataclass(frozen=True, slots=True)
class TokenResult:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    principal: Principal | None


class TokenService:
    """Runs token requests; shared by the HTTP endpoint and the in-process CLI (``rcm token``)."""

    def __init__(
        self, settings: Settings, keyring: KeyRing, issuer_keys: IssuerKeyCache | None = None
    ) -> None:
        self.settings = settings
        self.keyring = keyring
        self.issuer_keys = issuer_keys or IssuerKeyCache(settings)

    async def exchange(
        self,
        sessions: Sessions,
        form: dict[str, str],
        headers: Mapping[str, str],
        *,
        request: RequestInfo,
        control: Sessions | None = None,
    ) -> TokenResult:
        """Run one token request. ``control`` (the control role) is used only to link a person's subject on
        their first login; without it the person still logs in (matched by email again next time)."""
        prepared = await self._prepare(sessions, form, headers)
        server = RCMAuthorizationServer(self.settings, prepared)
        oauth_request = _Request(token_endpoint_url(self.settings), form, headers)
        status, body, out_headers = server.create_token_response(oauth_request)
        principal = prepared.issued if status == 200 else None
        if principal is not None and not await _commit_issue(sessions, prepared, principal, request, control):
            status, body, out_headers = server.handle_error_response(
                oauth_request, InvalidClientError(description="The client assertion was used before.")
            )
            principal = None
        if principal is None:
            body = rfc6749_wording(body, form, headers)
            await _audit_denied(
                sessions, form=form, headers=headers, prepared=prepared, body=body, request=request
            )
        return TokenResult(status, body, out_headers, principal)

    async def _prepare(
        self, sessions: Sessions, form: dict[str, str], headers: Mapping[str, str]
    ) -> _Prepared:
        prepared = _Prepared(signing_key=await self.keyring.signing_key(sessions))
        client_id = _presented_client_id(form, headers)
        grant_type = form.get("grant_type")
        async with platform_transaction(sessions) as session:
            if client_id:
                prepared.client = await lookup_client_for_token_endpoint(session, client_id)
                if prepared.client is not None:
                    prepared.client_tenant_active = await tenant_is_active(session, prepared.client.tenant_id)
            if grant_type == JWT_BEARER and form.get("assertion"):
                parsed = unverified_claims(form["assertion"])
                if parsed is not None:
                    header, claims = parsed
                    issuer = trusted_issuers(self.settings).get(str(claims.get("iss")))
                    if issuer is not None:
                        prepared.issuer = issuer
                        prepared.user = await find_app_user(session, claims)
                        if prepared.user is not None and Role.AUDITOR.value in prepared.user.roles:
                            prepared.assigned_tenants = await system_assigned_tenants(
                                session, prepared.user.id
                            )
                        kid = header.get("kid")
                        try:
                            prepared.issuer_keys = await self.issuer_keys.keys_for(
                                issuer, kid if isinstance(kid, str) else None
                            )
                        except Exception:  # an unreachable or broken IdP is an invalid_grant, not a 500
                            prepared.issuer_keys = None
        return prepared


async def _commit_issue(
    sessions: Sessions,
    prepared: _Prepared,
    principal: Principal,
    request: RequestInfo,
    control: Sessions | None = None,
) -> bool:
    """One transaction for what a granted request writes: the client assertion's jti (single use), the
    first link of a person's subject, and the success event. The token is handed out only if it commits.

    Linking writes ``app_user``, a control-plane table: that one transaction runs as the control role.
    False (and nothing written) when the assertion was used before.
    """
    subject = prepared.id_claims.get("sub")
    link = (
        prepared.user is not None
        and isinstance(subject, str)
        and prepared.user.subject != subject
        and control is not None
    )
    async with platform_transaction(control if link and control is not None else sessions) as session:
        if prepared.assertion_jti is not None and not await _record_assertion_jti(
            session, *prepared.assertion_jti
        ):
            return False
        if principal.kind is PrincipalKind.CLIENT:
            await audit_hooks.token_issued(
                session, request=request, principal=principal, grant_type="client_credentials"
            )
            return True
        issuer = prepared.issuer.issuer if prepared.issuer else ""
        linked = False
        if link and prepared.user is not None and isinstance(subject, str):
            # Matched by a verified email of this same issuer (first login): from now on, (iss, sub).
            linked = await link_subject(session, prepared.user.id, issuer=issuer, subject=subject)
        await audit_hooks.login(session, request=request, principal=principal, issuer=issuer, linked=linked)
    return True


async def _audit_denied(
    sessions: Sessions,
    *,
    form: dict[str, str],
    headers: Mapping[str, str],
    prepared: _Prepared,
    body: dict[str, Any],
    request: RequestInfo,
) -> None:
    """Refusals are recorded in a transaction of their own: nothing else of the request commits."""
    hint = _presented_client_id(form, headers) or (prepared.issuer.issuer if prepared.issuer else None)
    tenant = TenantId(prepared.client.tenant_id) if prepared.client is not None else None
    await audit_hooks.token_denied(
        sessions,
        request=request,
        grant_type=form.get("grant_type"),
        error=str(body.get("error", "unknown")),
        actor_hint=hint,
        tenant_id=tenant,
    )


def _presented_client_id(form: dict[str, str], headers: Mapping[str, str]) -> str | None:
    basic_id, _ = extract_basic_authorization(headers)
    if basic_id:
        return str(basic_id)
    if form.get("client_assertion_type") == CLIENT_ASSERTION_TYPE and form.get("client_assertion"):
        parsed = unverified_claims(form["client_assertion"])
        if parsed is not None and isinstance(parsed[1].get("sub"), str):
            return str(parsed[1]["sub"])
    return None


async def _record_assertion_jti(session: AsyncSession, client_id: str, jti: str, exp: int) -> bool:
    """Remember an accepted assertion's jti until it can no longer be accepted; False if it was used before.

    Rows are purged only once exp + leeway has passed: until then authlib would still accept the assertion.
    """
    return await remember_assertion(
        session,
        client_id=client_id,
        jti=jti[:200],
        expires_at=datetime.fromtimestamp(exp, UTC),
        keep_expired_for=timedelta(seconds=ASSERTION_LEEWAY_SECONDS),
    )
