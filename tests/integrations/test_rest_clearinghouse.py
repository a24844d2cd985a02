"""The REST connector against a real HTTP server on 127.0.0.1 (the standard library's, in a thread), which
plays a clearinghouse and records every request it receives: paths, headers, bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from rcm.kit.secrets import SecretResolver
from rcm.payers.connector import (
    Connector,
    PermanentConnectorError,
    Submission,
    TransientConnectorError,
)
from rcm.payers.registry import build_config, open_connector
from rest_clearinghouse import RestClearinghouse
from tests.support import http_server

TOKEN = "tok-abc123"
X12 = (
    b"ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*CLEARINGHOUSE  "
    b"*261201*0700*^*00501*000000123*0*T*:~"
)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Clearinghouse:
    port: int
    received: list[Recorded] = field(default_factory=list)
    # Scripted answers, consumed first: (status, headers, body).
    script: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    claims: dict[str, str] = field(default_factory=dict)  # idempotency key -> reference
    files: list[dict[str, str]] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    names: set[str] = field(default_factory=set)  # file names received (GET /claims/{name} finds them)


def _handler(state: Clearinghouse) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self) -> None:  # noqa: PLR0911 - one return per route of the fake clearinghouse
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            url = urlsplit(self.path)
            state.received.append(Recorded(self.command, self.path, dict(self.headers.items()), body))
            if state.script:
                status, headers, answer = state.script.pop(0)
                return self._answer(status, answer, headers)
            if self.headers.get("Authorization") not in {f"Bearer {TOKEN}", "Basic U1VCOnMzY3JldDpwdw=="}:
                return self._answer(401, {"error": "unauthorized"})
            if (self.command, url.path) == ("POST", "/api/v1/claims"):
                key = self.headers["Idempotency-Key"]
                state.names.add(body["file_name"])
                duplicate = key in state.claims
                reference = state.claims.setdefault(key, f"CH-{len(state.claims) + 1}")
                return self._answer(
                    200 if duplicate else 201, {"reference": reference, "duplicate": duplicate}
                )
            if self.command == "GET" and url.path.startswith("/api/v1/claims/"):
                found = url.path.rsplit("/", 1)[1] in state.names
                return self._answer(200 if found else 404, {"found": found})
            if (self.command, url.path) == ("GET", "/api/v1/responses"):
                cursor = int(parse_qs(url.query).get("cursor", ["0"])[0])
                files = [f for f in state.files if int(f["seq"]) > cursor]
                next_cursor = files[-1]["seq"] if files else None
                listed = [{k: v for k, v in f.items() if k != "seq"} for f in files]
                return self._answer(200, {"files": listed, "cursor": next_cursor})
            if self.command == "POST" and url.path.startswith("/api/v1/responses/"):
                state.acked.append(url.path.split("/")[-2])
                return self._answer(204, None)
            if (self.command, url.path) == ("POST", "/api/v1/eligibility"):
                return self._answer(200, {"x12": body["x12"].replace("*270*", "*271*")})
            if (self.command, url.path) == ("POST", "/api/v1/claim-status"):
                return self._answer(200, {"x12": body["x12"].replace("*276*", "*277*")})
            return self._answer(404, {"error": "no such route"})

        do_GET = do_POST = _handle

    return Handler


@pytest.fixture
def clearinghouse() -> Iterator[Clearinghouse]:
    state = Clearinghouse(port=0)
    with http_server(_handler(state)) as port:
        state.port = port
        yield state


def _connector(
    ch: Clearinghouse, tmp_path: Path, secret: str = TOKEN, *, port: int | None = None
) -> Connector:
    (tmp_path / "api").write_text(secret)
    return open_connector(
        build_config(
            connector="rest",
            endpoint=f"http://127.0.0.1:{port or ch.port}/api/v1",
            submitter_id="SUBMITTER01",
            receiver_id="CLEARINGHOUSE",
            credentials_reference="file:api",
            resolver=SecretResolver(secrets_dir=tmp_path),
            timeout_seconds=5,
        )
    )


def _submission() -> Submission:
    return Submission(file_name="clm-000000123.x12", interchange_control_number="000000123", x12=X12)


async def test_submit_sends_the_x12_with_an_idempotency_key(
    clearinghouse: Clearinghouse, tmp_path: Path
) -> None:
    connector = _connector(clearinghouse, tmp_path)
    assert isinstance(connector, RestClearinghouse)
    try:
        first = await connector.submit(_submission())
        again = await connector.submit(_submission())
    finally:
        await connector.aclose()
    assert (first.reference, first.duplicate) == ("CH-1", False)
    assert (again.reference, again.duplicate) == ("CH-1", True)
    sent = clearinghouse.received[0]
    assert (sent.method, sent.path) == ("POST", "/api/v1/claims")
    assert sent.headers["Idempotency-Key"] == "SUBMITTER01-000000123"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert sent.body == {
        "file_name": "clm-000000123.x12",
        "interchange_control_number": "000000123",
        "submitter_id": "SUBMITTER01",
        "receiver_id": "CLEARINGHOUSE",
        "x12": X12.decode(),
    }


async def test_basic_credentials_for_user_colon_password(
    clearinghouse: Clearinghouse, tmp_path: Path
) -> None:
    connector = _connector(clearinghouse, tmp_path, "SUB:s3cret:pw")
    try:
        assert (await connector.submit(_submission())).reference == "CH-1"
    finally:
        await connector.aclose()
    assert clearinghouse.received[0].headers["Authorization"] == "Basic U1VCOnMzY3JldDpwdw=="


async def test_fetch_by_cursor_and_acknowledge(clearinghouse: Clearinghouse, tmp_path: Path) -> None:
    clearinghouse.files = [
        {
            "seq": "1",
            "id": "r/1",
            "name": "999-1.x12",
            "x12": "ISA*999~",
            "received_at": "2026-12-01T06:00:00Z",
        },
        {
            "seq": "2",
            "id": "r-2",
            "name": "277-2.x12",
            "x12": "ISA*277~",
            "received_at": "2026-12-01T06:05:00Z",
        },
    ]
    connector = _connector(clearinghouse, tmp_path)
    try:
        page = await connector.fetch_responses(None)
        assert [(f.id, f.name, f.content) for f in page.files] == [
            ("r/1", "999-1.x12", b"ISA*999~"),
            ("r-2", "277-2.x12", b"ISA*277~"),
        ]
        assert page.files[0].received_at.isoformat() == "2026-12-01T06:00:00+00:00"
        assert page.cursor == "2"
        empty = await connector.fetch_responses(page.cursor)
        assert (empty.files, empty.cursor) == ([], "2")  # nothing newer: the caller keeps its place
        for file in page.files:
            await connector.acknowledge(file)
    finally:
        await connector.aclose()
    assert clearinghouse.received[1].path == "/api/v1/responses?cursor=2"
    assert clearinghouse.acked == ["r%2F1", "r-2"]  # an id is one path segment, whatever it holds


async def test_real_time_eligibility_and_status(clearinghouse: Clearinghouse, tmp_path: Path) -> None:
    connector = _connector(clearinghouse, tmp_path)
    try:
        assert await connector.check_eligibility(b"ST*270*0001~") == b"ST*271*0001~"
        assert await connector.claim_status(b"ST*276*0001~") == b"ST*277*0001~"
    finally:
        await connector.aclose()
    assert [r.body for r in clearinghouse.received] == [{"x12": "ST*270*0001~"}, {"x12": "ST*276*0001~"}]


async def test_429_and_5xx_are_transient_with_retry_after(
    clearinghouse: Clearinghouse, tmp_path: Path
) -> None:
    clearinghouse.script = [
        (429, {"Retry-After": "7"}, {"error": "slow down"}),
        (503, {"Retry-After": "Tue, 01 Dec 2099 07:00:00 GMT"}, None),
        (502, {}, None),
    ]
    connector = _connector(clearinghouse, tmp_path)
    try:
        with pytest.raises(TransientConnectorError) as limited:
            await connector.submit(_submission())
        assert limited.value.retry_after == 7.0
        with pytest.raises(TransientConnectorError) as unavailable:
            await connector.submit(_submission())
        assert unavailable.value.retry_after == 3600.0  # a far date is capped at an hour
        with pytest.raises(TransientConnectorError, match="502") as bad_gateway:
            await connector.submit(_submission())
        assert bad_gateway.value.retry_after is None
    finally:
        await connector.aclose()


async def test_4xx_is_permanent_and_echoes_nothing(clearinghouse: Clearinghouse, tmp_path: Path) -> None:
    clearinghouse.script = [(422, {}, {"error": "bad claim", "echo": X12.decode()})]
    connector = _connector(clearinghouse, tmp_path, "wrong-token")
    try:
        with pytest.raises(PermanentConnectorError) as rejected:
            await connector.submit(_submission())
        assert str(rejected.value) == "rest submit: the clearinghouse answered 422"
        with pytest.raises(PermanentConnectorError, match="refused the credentials") as refused:
            await connector.submit(_submission())
        assert "wrong-token" not in str(refused.value)
    finally:
        await connector.aclose()


async def test_a_server_that_is_down_is_transient(clearinghouse: Clearinghouse, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    connector = _connector(clearinghouse, tmp_path, port=free)
    try:
        with pytest.raises(TransientConnectorError, match="cannot reach"):
            await connector.fetch_responses(None)
    finally:
        await connector.aclose()


async def test_delivered_asks_the_clearinghouse_by_file_name(
    clearinghouse: Clearinghouse, tmp_path: Path
) -> None:
    connector = _connector(clearinghouse, tmp_path)
    try:
        assert await connector.delivered("clm-000000123.x12") is False
        await connector.submit(_submission())
        assert await connector.delivered("clm-000000123.x12") is True
        assert clearinghouse.received[-1].path == "/api/v1/claims/clm-000000123.x12"
        # An API without the lookup cannot tell; a clearinghouse that is down is transient.
        clearinghouse.script = [(501, {}, None), (405, {}, None), (503, {"Retry-After": "7"}, None)]
        assert await connector.delivered("clm-000000123.x12") is None
        assert await connector.delivered("clm-000000123.x12") is None
        with pytest.raises(TransientConnectorError) as down:
            await connector.delivered("clm-000000123.x12")
        assert (down.value.operation, down.value.retry_after) == ("delivered", 7.0)
    finally:
        await connector.aclose()
