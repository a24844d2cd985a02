"""The REST connector (httpx). One AsyncClient per connector instance, closed by ``aclose``."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from rcm.payers.connector import (
    ConnectorConfig,
    InboundFile,
    Receipt,
    ResponsePage,
    Submission,
)

# Retry-After beyond this is treated as this: a job should come back within the hour, not next week.
_MAX_RETRY_AFTER = 3600.0


class _Accepted(msgspec.Struct):
    reference: str
    duplicate: bool = False


class _File(msgspec.Struct):
    id: str
    name: str
    x12: str
    received_at: datetime


class _Page(msgspec.Struct):
    files: list[_File]
    cursor: str | None = None


class _X12(msgspec.Struct):
    x12: str


class RestClearinghouse:
    def __init__(self, config: ConnectorConfig) -> None:
        endpoint = config.endpoint
        if endpoint.scheme not in {"https", "http"}:
            raise config.permanent("configure", "the rest connector needs an https:// endpoint")
        self.config = config
        host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
        port = f":{endpoint.port}" if endpoint.port else ""
        base = f"{endpoint.scheme}://{host}{port}{endpoint.path.rstrip('/')}"
        auth: httpx.Auth | None = None
        headers = {"Accept": "application/json"}
        if config.credentials is not None:
            secret = config.credentials.get_secret_value()
            user, colon, password = secret.partition(":")
            if colon:
                auth = httpx.BasicAuth(user, password)
            else:
                headers["Authorization"] = f"Bearer {secret}"
        self._client = httpx.AsyncClient(
            base_url=base,
            auth=auth,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_seconds),
            # A redirect would carry the credentials somewhere the directory did not name.
            follow_redirects=False,
        )

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        config = self.config
        try:
            response = await self._client.request(method, path, json=json, params=params, headers=headers)
        except httpx.TimeoutException:
            raise config.transient(operation, "the clearinghouse did not answer in time") from None
        except httpx.TransportError as exc:
            raise config.transient(
                operation, f"cannot reach the clearinghouse ({type(exc).__name__})"
            ) from None
        status = response.status_code
        if status < 300:
            return response
        if status == 429 or status >= 500:
            raise config.transient(
                operation, f"the clearinghouse answered {status}", retry_after=_retry_after(response)
            )
        if status in {401, 403}:
            raise config.permanent(operation, f"the clearinghouse refused the credentials ({status})")
        # The body may echo the request (X12 with PHI): only the status goes into the error.
        raise config.permanent(operation, f"the clearinghouse answered {status}")

    def _decode(self, operation: str, response: httpx.Response, kind: type[Any]) -> Any:
        try:
            return msgspec.json.decode(response.content, type=kind)
        except msgspec.DecodeError:
            # A broken answer from a working server (a proxy's error page, a deploy in progress): retry.
            raise self.config.transient(
                operation, "the clearinghouse's answer is not the expected JSON"
            ) from None

    async def submit(self, submission: Submission) -> Receipt:
        config = self.config
        body = {
            "file_name": submission.file_name,
            "interchange_control_number": submission.interchange_control_number,
            "submitter_id": config.submitter_id,
            "receiver_id": config.receiver_id,
            "x12": _text(submission.x12),
        }
        # Interchange numbers are unique per submitter, so the pair is the interchange: a retried job
        # replays the same key and the clearinghouse answers with the first submission's reference.
        key = self._key(submission.interchange_control_number)
        response = await self._call("submit", "POST", "/claims", json=body, headers={"Idempotency-Key": key})
        accepted: _Accepted = self._decode("submit", response, _Accepted)
        return Receipt(
            reference=accepted.reference, accepted_at=datetime.now(UTC), duplicate=accepted.duplicate
        )

    def _key(self, interchange_control_number: str) -> str:
        return f"{self.config.submitter_id}-{interchange_control_number}"

    async def delivered(self, file_name: str) -> bool | None:
        """``GET /claims/{file_name}``: 200 it has the file, 404 it has not; a clearinghouse whose API has
        no such lookup (405, 501) cannot tell (None)."""
        config = self.config
        try:
            response = await self._client.get(f"/claims/{quote(file_name, safe='')}")
        except httpx.TimeoutException:
            raise config.transient("delivered", "the clearinghouse did not answer in time") from None
        except httpx.TransportError as exc:
            raise config.transient(
                "delivered", f"cannot reach the clearinghouse ({type(exc).__name__})"
            ) from None
        status = response.status_code
        if status == 404:
            return False
        if status in {405, 501}:
            return None
        if status < 300:
            return True
        if status == 429 or status >= 500:
            raise config.transient(
                "delivered", f"the clearinghouse answered {status}", retry_after=_retry_after(response)
            )
        raise config.permanent("delivered", f"the clearinghouse answered {status}")

    async def fetch_responses(self, cursor: str | None) -> ResponsePage:
        params = {"cursor": cursor} if cursor else None
        response = await self._call("fetch", "GET", "/responses", params=params)
        page: _Page = self._decode("fetch", response, _Page)
        files = [
            InboundFile(
                id=f.id,
                name=f.name,
                content=self._bytes("fetch", f.x12),
                received_at=f.received_at if f.received_at.tzinfo else f.received_at.replace(tzinfo=UTC),
            )
            for f in page.files
        ]
        return ResponsePage(files=files, cursor=page.cursor or cursor)

    async def acknowledge(self, file: InboundFile) -> None:
        await self._call("acknowledge", "POST", f"/responses/{quote(file.id, safe='')}/ack")

    async def check_eligibility(self, x12_270: bytes) -> bytes:
        response = await self._call("eligibility", "POST", "/eligibility", json={"x12": _text(x12_270)})
        answer: _X12 = self._decode("eligibility", response, _X12)
        return self._bytes("eligibility", answer.x12)

    async def claim_status(self, x12_276: bytes) -> bytes:
        response = await self._call("claim status", "POST", "/claim-status", json={"x12": _text(x12_276)})
        answer: _X12 = self._decode("claim status", response, _X12)
        return self._bytes("claim status", answer.x12)

    def _bytes(self, operation: str, x12: str) -> bytes:
        """X12 text from the JSON answer as the bytes it stands for; a character beyond latin-1 cannot be
        X12 5010 content, so the answer is refused (dead letter) rather than crashing the job."""
        try:
            return x12.encode("latin-1")
        except UnicodeEncodeError:
            raise self.config.permanent(operation, "the answer holds characters X12 cannot carry") from None

    async def aclose(self) -> None:
        await self._client.aclose()


def _text(x12: bytes) -> str:
    # X12 5010 is ASCII (the basic and extended character sets); latin-1 never fails and round-trips bytes.
    return x12.decode("latin-1")


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds (RFC 9110: delay-seconds or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), _MAX_RETRY_AFTER)
