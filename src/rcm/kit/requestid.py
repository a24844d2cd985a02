"""Request ids: taken from X-Request-ID when the caller sends a sane one, generated otherwise, echoed back.

The id lives in ``scope["state"]["request_id"]``. ``request_id_of`` is the one way to read it (and chooses it
on first use), so what an audit event records is exactly what the caller gets back in the response header,
whichever middleware happens to ask first.
"""

from __future__ import annotations

import re
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_SANE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_STATE_KEY = "request_id"


def request_id_of(scope: Scope) -> str:
    """The id of this request, as echoed in the response's X-Request-ID.

    The caller's header is used only when it is sane (short, plain characters: it ends up in logs and in the
    audit trail); otherwise a fresh id is made. Either way it is stored in the scope, so every reader of one
    request agrees.
    """
    state = scope.setdefault("state", {})
    request_id = state.get(_STATE_KEY)
    if not isinstance(request_id, str) or not request_id:
        sent = dict(scope.get("headers") or ()).get(HEADER.encode(), b"").decode("latin-1")
        request_id = sent if _SANE.match(sent) else uuid.uuid4().hex
        state[_STATE_KEY] = request_id
    return request_id


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Fixes the request's id before anything else runs (echoed by ``echo_request_id``)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            request_id_of(scope)
        await app(scope, receive, send)

    return middleware


async def echo_request_id(message: Message, scope: Scope) -> None:
    """App-level ``before_send`` hook. Route middleware never sees the responses the app's own exception
    handler sends (a 401 from authentication, a 404 for an unknown path); this hook sees every response."""
    if message["type"] == "http.response.start" and scope["type"] == ScopeType.HTTP:
        MutableScopeHeaders.from_message(message)[HEADER] = request_id_of(scope)
