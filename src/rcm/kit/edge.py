"""The edge of the app: who the caller really is behind a proxy, and the security headers of every response.

Forwarded headers are believed only from configured proxies (``RCM_TRUSTED_PROXIES``, default none). The
client address feeds the audit trail's source address and the per-address rate limit, so a header any
caller can send must never be able to set it. Behind trusted proxies the address is taken from
X-Forwarded-For walked from the right: each trusted hop is skipped, and the first address not in the trusted
set is the caller (what the outermost trusted proxy saw), as nginx's ``real_ip_recursive`` does. The
middleware rewrites ``scope["client"]`` (and ``scope["scheme"]`` from X-Forwarded-Proto), so every reader —
``request.client``, the audit trail, the rate limiter — agrees without knowing about proxies.

uvicorn's own proxy-header middleware trusts 127.0.0.1 by default; ``serve`` turns it off so this module is
the one place that decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, BeforeMessageSendHookHandler, Message, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Two years, subdomains included: the HSTS preload list's requirement and what Stripe and GitHub send.
HSTS = "max-age=63072000; includeSubDomains"
# Every API answer may carry PHI (or a token): nothing in between may keep a copy. Routes that are safe to
# cache (the JWKS) set their own Cache-Control, which is left alone.
_ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
_DEFAULTS = {"cache-control": "no-store"}
# JSON answers need no script, style or frame at all; the docs pages run Swagger UI's own (local) script
# and the inline start-up snippet litestar writes.
_API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)

# Pages (any HTML answer but the docs): this site's own stylesheets, scripts and images only, no inline script
# or style, forms posting only here, never framed.
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def _parse(value: str) -> Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: Address | None, proxies: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in proxies)


def _header_values(scope: Scope, name: bytes) -> list[str]:
    """Every comma-separated element of every instance of a header, in order (a proxy may append a new
    header line instead of extending the existing one)."""
    out: list[str] = []
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            out.extend(part.strip() for part in value.decode("latin-1").split(","))
    return [part for part in out if part]


def forwarded_client(scope: Scope, proxies: Sequence[Network]) -> tuple[str, str] | None:
    """The (client address, scheme) the trusted proxies vouch for, or None to keep the TCP peer's."""
    client = scope.get("client")
    if not proxies or not client or not _trusted(_parse(str(client[0])), proxies):
        return None
    hops = _header_values(scope, b"x-forwarded-for")
    caller: str | None = None
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break  # garbage left of the trusted hops: only a client could have written it; stop here
        caller = str(address)
        if not _trusted(address, proxies):
            break
    protos = _header_values(scope, b"x-forwarded-proto")
    # The nearest proxy's word on the scheme (the last element) is the one a trusted hop wrote.
    scheme = protos[-1].lower() if protos and protos[-1].lower() in ("http", "https") else scope["scheme"]
    if caller is None:
        return (str(client[0]), scheme)
    return (caller, scheme)


def forwarded_middleware_factory(proxies: Iterable[Network]) -> type:
    """ASGI middleware (as a litestar middleware class) that applies ``forwarded_client`` to each request."""
    trusted = tuple(proxies)

    class ForwardedMiddleware:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in (ScopeType.HTTP, ScopeType.WEBSOCKET):
                found = forwarded_client(scope, trusted)
                if found is not None:
                    address, scheme = found
                    peer = scope.get("client")
                    scope["client"] = (address, peer[1] if peer else 0)
                    scope["scheme"] = scheme
            await self.app(scope, receive, send)

    return ForwardedMiddleware


def security_headers_hook(docs_path: str) -> BeforeMessageSendHookHandler:
    """App-level ``before_send`` hook: route middleware never sees the responses the app's own exception
    handler sends (a 401 from authentication, a 404 for an unknown path); this hook sees every response."""

    async def add_security_headers(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in _ALWAYS.items():
            headers[name] = value
        for name, value in _DEFAULTS.items():
            if name not in headers:
                headers[name] = value
        path = str(scope.get("path", ""))
        if path == docs_path or path.startswith(docs_path + "/"):
            headers["content-security-policy"] = _DOCS_CSP
        elif (headers.get("content-type") or "").startswith(("text/html", "text/css")):
            headers["content-security-policy"] = _PAGE_CSP
        else:
            headers["content-security-policy"] = _API_CSP
        # HSTS only over TLS: browsers ignore it on plain HTTP, and sending it there would be a lie. Behind
        # a TLS-terminating proxy the scheme is the trusted proxy's X-Forwarded-Proto (above).
        if scope.get("scheme") == "https":
            headers["strict-transport-security"] = HSTS
        # A server banner tells an attacker which CVEs to try; uvicorn's is off (``serve``), and nothing
        # downstream may add one.
        del headers["server"]

    return add_security_headers
