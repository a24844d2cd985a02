"""The token endpoint's form, answer and errors as types, for the OpenAPI document (the handler reads its own
form: RFC 6749 forbids repeated parameters, which a decoded struct would hide)."""

from __future__ import annotations

from enum import StrEnum

import msgspec
from litestar.openapi.datastructures import ResponseSpec

from rcm.identity.server import CLIENT_ASSERTION_TYPE, JWT_BEARER


class GrantType(StrEnum):
    CLIENT_CREDENTIALS = "client_credentials"
    JWT_BEARER = JWT_BEARER


class ClientAssertionType(StrEnum):
    JWT_BEARER = CLIENT_ASSERTION_TYPE


class TokenRequest(msgspec.Struct, kw_only=True):
    """application/x-www-form-urlencoded. The client authenticates with HTTP Basic (client_secret_basic) or
    a signed ``client_assertion`` (private_key_jwt, aud = this endpoint's URL)."""

    grant_type: GrantType
    # Space-separated scopes; omitted = every scope the client (or the person's role) may have.
    scope: str | None = None
    # jwt-bearer: an OIDC ID token from a trusted issuer.
    assertion: str | None = None
    client_id: str | None = None
    client_assertion_type: ClientAssertionType | None = None
    client_assertion: str | None = None


class TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str  # "Bearer"
    expires_in: int  # seconds
    scope: str  # space-separated


class OAuthError(msgspec.Struct):
    """RFC 6749 §5.2."""

    error: str  # invalid_request, invalid_client, invalid_grant, unauthorized_client, ...
    error_description: str | None = None


TOKEN_RESPONSES = {
    200: ResponseSpec(TokenResponse, description="An access token (RFC 6749 §5.1)", generate_examples=False),
    400: ResponseSpec(
        OAuthError, description="The request is invalid (RFC 6749 §5.2)", generate_examples=False
    ),
    401: ResponseSpec(
        OAuthError, description="Client authentication failed (RFC 6749 §5.2)", generate_examples=False
    ),
}
