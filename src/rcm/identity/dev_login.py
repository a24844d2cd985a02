"""DEVELOPMENT ONLY — the dev issuer's browser login: an HTML page (email and a second-factor checkbox, NO
PASSWORD), the authorization endpoint that answers it with a code, and the token endpoint that trades the
code and its PKCE verifier for an ID token. Registered with the dev issuer (never in production)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromQuery, QueryParameter
from litestar.response import Redirect, Template

from rcm.identity.dev_codes import CODE_TTL_SECONDS, CodeRefused, authorize_request, issue_code, redeem_code
from rcm.identity.middleware import PAGE_OPT_KEY, PUBLIC_OPT_KEY
from rcm.kit.openapi import FORM_BODY_OPT

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_AUTHORIZE_FIELDS = ("response_type", "client_id", "redirect_uri", "state", "nonce", "code_challenge",
                     "code_challenge_method")  # fmt: skip


class DevAuthorizeForm(msgspec.Struct):
    email: str
    response_type: str
    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    mfa: str | None = None


class DevTokenForm(msgspec.Struct):
    grant_type: Annotated[str, msgspec.Meta(examples=["authorization_code"])]
    code: str
    redirect_uri: str
    client_id: str
    code_verifier: str


async def _single_form(request: Request[Any, Any, Any]) -> dict[str, str] | None:
    """The form's fields, each once and as text (None when a field repeats or is a file)."""
    if request.content_type[0] != FORM_MEDIA_TYPE:
        return None
    form = await request.form()
    single: dict[str, str] = {}
    for key in form:
        values = form.getall(key)
        if len(values) != 1 or not isinstance(values[0], str):
            return None
        single[key] = values[0]
    return single


def _bad_request(message: str) -> Template:
    return Template("dev_login_error.html", context={"message": message}, status_code=400)


class DevLoginController(Controller):
    path = "/dev/oidc"
    tags = ["dev issuer (development only, no passwords)"]
    opt = {PUBLIC_OPT_KEY: True}
    include_in_schema = False

    @get("/authorize", opt={PAGE_OPT_KEY: True}, summary="DEV ONLY: the login page (no password)")
    async def authorize_page(
        self,
        *,
        state: State,
        response_type: FromQuery[str | None] = None,
        client_id: FromQuery[str | None] = None,
        redirect_uri: FromQuery[str | None] = None,
        code_challenge: FromQuery[str | None] = None,
        code_challenge_method: FromQuery[str | None] = None,
        nonce: FromQuery[str | None] = None,
        oidc_scope: Annotated[str | None, QueryParameter(name="scope")] = None,
        request_state: Annotated[str | None, QueryParameter(name="state")] = None,
    ) -> Template:
        params = {
            "response_type": response_type,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": request_state,
            "nonce": nonce,
            "code_challenge": code_challenge,
            "code_challenge_method": code_challenge_method,
        }
        try:
            authorize_request(state.settings, params)
        except ValueError as exc:
            return _bad_request(str(exc))
        return Template("dev_login.html", context={"params": params})

    @post("/authorize", status_code=303, opt={PAGE_OPT_KEY: True, FORM_BODY_OPT: DevAuthorizeForm})
    async def authorize(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        form = await _single_form(request)
        if form is None:
            return _bad_request("the login form must be posted once, form-encoded")
        try:
            authorized = authorize_request(state.settings, form)
        except ValueError as exc:
            return _bad_request(str(exc))
        email = form.get("email", "").strip()
        if not 3 <= len(email) <= 320 or "@" not in email:
            return Template(
                "dev_login.html",
                context={"params": {k: form.get(k) for k in _AUTHORIZE_FIELDS}, "error": "Enter an email."},
                status_code=400,
            )
        code = issue_code(state.settings, authorized, email=email, mfa=form.get("mfa") == "on")
        query = urlencode({"code": code, "state": authorized.state})
        return Redirect(f"{authorized.redirect_uri}?{query}", status_code=303)

    @post(
        "/token",
        status_code=200,
        summary="DEV ONLY: an ID token for an authorization code and its PKCE verifier (single use)",
        opt={FORM_BODY_OPT: DevTokenForm},
    )
    async def token(self, request: Request[Any, Any, Any], state: State) -> Response[dict[str, Any]]:
        form = await _single_form(request)
        headers = {"Cache-Control": "no-store"}
        if form is None or form.get("grant_type") != "authorization_code":
            return Response({"error": "invalid_request"}, status_code=400, headers=headers)
        try:
            id_token = await redeem_code(
                state.settings,
                state.sessions,
                code=form.get("code", ""),
                client_id=form.get("client_id", ""),
                redirect_uri=form.get("redirect_uri", ""),
                code_verifier=form.get("code_verifier", ""),
            )
        except CodeRefused as exc:
            return Response({"error": str(exc)}, status_code=400, headers=headers)
        body = {"id_token": id_token, "token_type": "Bearer", "expires_in": CODE_TTL_SECONDS}
        return Response(body, headers=headers)
