"""The connector protocol: how the claims pipeline reaches a clearinghouse or a payer.

A connector moves X12 bytes and nothing else. It never sees claim tables, tenants or keys: it is given a
``ConnectorConfig`` (the directory's endpoint URL, the practice's submitter and receiver ids and the
credentials already resolved from the practice's secret reference) and it submits, fetches, acknowledges and
asks. Implementations live as packages under ``integrations/`` and are found through the ``rcm.connectors``
entry-point group (``rcm.payers.registry``); they import this module and ``rcm.x12`` only.

Errors come in two kinds, and the caller (a dramatiq job) decides what to do from the kind alone:

- ``TransientConnectorError``: the network, a timeout, a 5xx or a 429, a clearinghouse that is down. Retry
  with backoff (``retry_after`` when the far side said how long); these count toward the circuit breaker.
- ``PermanentConnectorError``: credentials refused, a 4xx, a malformed endpoint, an unknown host key. Retrying
  cannot help: the job goes to the dead-letter queue, where a biller sees it and replays it once fixed.

Messages name the connector, the operation and what went wrong in words; they never carry a credential, a
file's content or anything read from a claim (file names are opaque and PHI-free by contract).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec
from pydantic import SecretStr

# Opaque, PHI-free file names: letters, digits, dot, dash, underscore; no path, no leading dot (a leading dot
# marks our own partial uploads on an SFTP server).
_FILE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
# ISA13: nine digits. GS06 is up to nine too; the interchange number is what a clearinghouse keys on.
_CONTROL_NUMBER = re.compile(r"^[0-9]{9}$")


class ConnectorError(Exception):
    """A connector could not do what it was asked. Never raised directly: transient or permanent."""

    def __init__(self, connector: str, operation: str, reason: str) -> None:
        super().__init__(f"{connector} {operation}: {reason}")
        self.connector = connector
        self.operation = operation
        self.reason = reason


class TransientConnectorError(ConnectorError):
    """Worth retrying later (network, timeout, 5xx, 429, clearinghouse down). ``retry_after`` in seconds when
    the far side named it (HTTP Retry-After), else None and the caller's backoff decides."""

    def __init__(
        self, connector: str, operation: str, reason: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(connector, operation, reason)
        self.retry_after = retry_after


class PermanentConnectorError(ConnectorError):
    """Retrying cannot help (credentials refused, 4xx, malformed endpoint, unknown host key): dead-letter."""


class EndpointScheme(StrEnum):
    SFTP = "sftp"
    HTTPS = "https"
    # Plain HTTP only to a loopback address (a local test server or a sidecar): never across a network.
    HTTP = "http"
    SANDBOX = "sandbox"


class Endpoint(msgspec.Struct, frozen=True):
    """A directory's endpoint reference, parsed: ``sftp://[user@]host[:port]/base?inbound=...``,
    ``https://host[:port]/base``, ``sandbox:[name]``. No secrets: a password in the URL is refused."""

    scheme: EndpointScheme
    host: str
    port: int | None
    path: str
    username: str | None
    options: Mapping[str, str]

    @classmethod
    def parse(cls, url: str, *, connector: str = "endpoint") -> Endpoint:
        def bad(reason: str) -> PermanentConnectorError:
            # The URL may be malformed in any way, but it holds no secret (refused below): naming it is safe
            # only when it parsed; otherwise say what is wrong.
            return PermanentConnectorError(connector, "configure", reason)

        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise bad("the endpoint is not a URL (sftp://, https://, sandbox:)") from None
        try:
            scheme = EndpointScheme(parts.scheme.lower())
        except ValueError:
            known = ", ".join(f"{s.value}:" for s in EndpointScheme)
            raise bad(f"the endpoint scheme {parts.scheme!r} is not one of {known}") from None
        if parts.password is not None:
            raise bad(
                "the endpoint URL carries a password; credentials go in the practice's secret reference"
            )
        options: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=False, strict_parsing=False):
            if key in options:
                raise bad(f"the endpoint option {key!r} is given twice")
            options[key] = value
        host = parts.hostname or ""
        if scheme is EndpointScheme.SANDBOX:
            return cls(scheme, host, None, parts.path, None, MappingProxyType(options))
        if not host:
            raise bad(f"the {scheme.value} endpoint names no host")
        if scheme is EndpointScheme.HTTP and host not in {"127.0.0.1", "::1", "localhost"}:
            raise bad("plain http is refused except to a loopback address; use https")
        username = unquote(parts.username) if parts.username else None
        return cls(scheme, host, port, unquote(parts.path), username, MappingProxyType(options))


class ConnectorConfig(msgspec.Struct, frozen=True):
    """What one connector instance needs: where, as whom, with what. Built by ``rcm.payers.registry`` from
    the directory's endpoint and the practice's enrollment; credentials arrive resolved, as ``SecretStr``."""

    connector: str  # the entry-point name (sftp, rest, sandbox): errors and breaker keys carry it
    endpoint: Endpoint
    submitter_id: str
    receiver_id: str
    credentials: SecretStr | None = None
    # Trust anchor of the far side, resolved from the endpoint's ``known_hosts=`` reference (SFTP: OpenSSH
    # known_hosts lines). Public material, but kept by reference so rotating it needs no directory change.
    known_hosts: str | None = None
    timeout_seconds: float = 30.0

    def __repr__(self) -> str:  # the credentials are SecretStr already; keep the rest short and safe
        return f"ConnectorConfig(connector={self.connector!r}, endpoint={self.endpoint.scheme}://{self.endpoint.host})"

    def transient(
        self, operation: str, reason: str, *, retry_after: float | None = None
    ) -> TransientConnectorError:
        return TransientConnectorError(self.connector, operation, reason, retry_after=retry_after)

    def permanent(self, operation: str, reason: str) -> PermanentConnectorError:
        return PermanentConnectorError(self.connector, operation, reason)


class Submission(msgspec.Struct, frozen=True):
    """One interchange to send. ``file_name`` is opaque (no PHI: built from ids, never from a patient)."""

    file_name: str
    interchange_control_number: str  # ISA13
    x12: bytes

    def __post_init__(self) -> None:
        if not _FILE_NAME.match(self.file_name):
            raise ValueError(
                "file_name must be 1-128 letters, digits, '.', '-' or '_', not starting with '.'"
            )
        if not _CONTROL_NUMBER.match(self.interchange_control_number):
            raise ValueError("interchange_control_number must be the nine digits of ISA13")
        if not self.x12:
            raise ValueError("x12 is empty")


class Receipt(msgspec.Struct, frozen=True):
    """The clearinghouse took the interchange. ``duplicate``: it already had it (a retried submit)."""

    reference: str
    accepted_at: datetime
    duplicate: bool = False


class InboundFile(msgspec.Struct, frozen=True):
    """A file the far side left for us (999, 277CA, 835...). ``id`` is stable across fetches: the caller
    de-duplicates on it, and hands the file back to ``acknowledge`` once stored."""

    id: str
    name: str
    content: bytes
    received_at: datetime


class ResponsePage(msgspec.Struct, frozen=True):
    files: list[InboundFile]
    cursor: str | None  # give it to the next fetch; None: nothing newer was seen, start over next time


@runtime_checkable
class Connector(Protocol):
    """One clearinghouse or payer, for one practice's enrollment. Every method may raise
    ``TransientConnectorError`` or ``PermanentConnectorError`` and nothing else."""

    config: ConnectorConfig

    async def submit(self, submission: Submission) -> Receipt:
        """Send one interchange. Idempotent on (submitter, interchange control number, file name)."""
        ...

    async def delivered(self, file_name: str) -> bool | None:
        """Did the far side receive the interchange sent as ``file_name``? Asked after a crash between the
        call and its record: True (it is there), False (it is not: send it), None (this connector cannot
        tell: a biller decides, since sending again might submit every claim twice)."""
        ...

    async def fetch_responses(self, cursor: str | None) -> ResponsePage:
        """Files received since ``cursor`` (None: from the oldest the far side still holds)."""
        ...

    async def acknowledge(self, file: InboundFile) -> None:
        """The caller stored ``file``: archive or delete it on the far side. Acknowledging twice is fine."""
        ...

    async def check_eligibility(self, x12_270: bytes) -> bytes:
        """A real-time 270 inquiry; returns the 271 (or a 999 / TA1 when the far side rejected the 270)."""
        ...

    async def claim_status(self, x12_276: bytes) -> bytes:
        """A real-time 276 inquiry; returns the 277."""
        ...

    async def aclose(self) -> None: ...


# What an ``rcm.connectors`` entry point loads: a class (or function) building a connector from its config.
ConnectorFactory = Callable[[ConnectorConfig], Connector]
