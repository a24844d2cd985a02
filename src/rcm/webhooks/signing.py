"""Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over
``"{webhook-id}.{webhook-timestamp}.{body}"`` with the subscription's secret, sent as ``v1,<base64>``.

A receiver recomputes it with the secret it was given, compares in constant time, refuses a timestamp more
than a few minutes off (replayed captures), and de-duplicates on Webhook-Id (delivery is at least once)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_BYTES = 32
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret; the Standard Webhooks spelling of a secret handed to a receiver


def new_secret() -> str:
    """A fresh signing secret, as given to the practice once: ``whsec_<base64 of 32 random bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Webhook-Id": webhook_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(secret, webhook_id, timestamp, body),
        "Content-Type": "application/json",
    }


def verify(secret: str, webhook_id: str, timestamp: int, body: bytes, signature_header: str) -> bool:
    """True when one of the space-separated signatures of the header is ours (receivers' side, and tests)."""
    expected = sign(secret, webhook_id, timestamp, body)
    return any(hmac.compare_digest(expected, given) for given in signature_header.split())
