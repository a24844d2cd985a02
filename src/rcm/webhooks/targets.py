"""Where a practice may have webhooks sent: https anywhere public; plain http only to a loopback address,
and only in dev and test (``RCM_ENV``). Parsed with the connectors' endpoint rules
(``rcm.payers.connector.Endpoint``: no credentials in the URL, http only to loopback), then narrowed."""

from __future__ import annotations

import ipaddress

from rcm.payers.connector import Endpoint, EndpointScheme, PermanentConnectorError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_URL = 2048


class TargetError(ValueError):
    """The URL may not receive webhooks; the message says why, never echoing the URL."""


def check_target(url: str, *, env: str) -> str:
    """``url`` as it will be called, or TargetError. Checked at subscription and again before each POST."""
    if len(url) > MAX_URL:
        raise TargetError(f"is longer than {MAX_URL} characters")
    try:
        endpoint = Endpoint.parse(url, connector="webhook")
    except PermanentConnectorError as exc:
        raise TargetError(exc.reason) from None
    if endpoint.scheme not in (EndpointScheme.HTTPS, EndpointScheme.HTTP):
        raise TargetError("must be an https:// URL")
    if endpoint.username is not None:
        raise TargetError("must carry no user name or password")
    loopback = endpoint.host in LOOPBACK_HOSTS
    if loopback and env not in ("dev", "test"):
        raise TargetError("may not be a loopback address outside development")
    if endpoint.scheme is EndpointScheme.HTTP and not loopback:
        raise TargetError("must be an https:// URL")
    try:
        address = ipaddress.ip_address(endpoint.host)
    except ValueError:
        return url.strip()
    # An address literal of our own network is refused (a webhook must not reach inside: metadata services,
    # databases). A host NAME resolving to one is not caught here: see the README's note.
    if not address.is_loopback and (address.is_private or address.is_link_local or address.is_reserved):
        raise TargetError("may not be a private, link-local or reserved address")
    return url.strip()
