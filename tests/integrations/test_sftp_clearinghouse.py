"""The SFTP connector against a real SFTP server (asyncssh's) on 127.0.0.1, serving a temporary folder.

Real client, real server, real files: an upload lands under its final name only complete, a retried upload
of the same interchange leaves one file, responses are fetched with stable ids and archived once
acknowledged; a refused password is permanent, a server that is down is transient.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest

from rcm.kit.secrets import SecretResolver
from rcm.payers.connector import (
    Connector,
    PermanentConnectorError,
    Submission,
    TransientConnectorError,
)
from rcm.payers.registry import build_config, open_connector
from sftp_clearinghouse import SftpClearinghouse

USER, PASSWORD = "SUBMITTER01", "correct horse battery"
X12 = (
    b"ISA*00*          *00*          *ZZ*SUBMITTER01    *ZZ*CLEARINGHOUSE  "
    b"*261201*0700*^*00501*000000123*0*T*:~"
)


class _Server(asyncssh.SSHServer):
    def __init__(self, keys: dict[str, asyncssh.SSHKey]) -> None:
        self._keys = keys

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        trusted = self._keys.get(username)
        return trusted is not None and trusted.public_data == key.public_data


@dataclass
class SftpServer:
    root: Path
    port: int
    known_hosts: str
    client_key: asyncssh.SSHKey


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SftpServer]:
    root = tmp_path / "sftp"
    for folder in ("outbound", "inbound"):
        (root / folder).mkdir(parents=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    listener = await asyncssh.listen(
        "127.0.0.1",
        0,
        server_host_keys=[host_key],
        server_factory=lambda: _Server({"KEYUSER": client_key}),
        sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
        allow_scp=False,
    )
    port = listener.sockets[0].getsockname()[1]
    known_hosts = f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n"
    try:
        yield SftpServer(root=root, port=port, known_hosts=known_hosts, client_key=client_key)
    finally:
        listener.close()
        await listener.wait_closed()


def _connector(server: SftpServer, tmp_path: Path, *, secret: str = PASSWORD, user: str = "") -> Connector:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "known_hosts").write_text(server.known_hosts)
    (secrets / "login").write_text(secret)
    at = f"{user}@" if user else ""
    return open_connector(
        build_config(
            connector="sftp",
            endpoint=f"sftp://{at}127.0.0.1:{server.port}/?known_hosts=file:known_hosts",
            submitter_id=USER,
            receiver_id="CLEARINGHOUSE",
            credentials_reference="file:login",
            resolver=SecretResolver(secrets_dir=secrets),
            timeout_seconds=10,
        )
    )


def _submission(name: str = "clm-000000123.x12") -> Submission:
    return Submission(file_name=name, interchange_control_number="000000123", x12=X12)


async def test_the_registry_finds_the_sftp_connector(server: SftpServer, tmp_path: Path) -> None:
    connector = _connector(server, tmp_path)
    assert isinstance(connector, SftpClearinghouse)
    assert isinstance(connector, Connector)
    assert PASSWORD not in repr(connector.config)


async def test_upload_lands_complete_and_a_retry_sends_nothing_twice(
    server: SftpServer, tmp_path: Path
) -> None:
    connector = _connector(server, tmp_path)
    receipt = await connector.submit(_submission())
    assert receipt.reference == "clm-000000123.x12"
    assert not receipt.duplicate
    assert [p.name for p in (server.root / "outbound").iterdir()] == ["clm-000000123.x12"]
    assert (server.root / "outbound" / "clm-000000123.x12").read_bytes() == X12

    again = await connector.submit(_submission())
    assert again.duplicate
    assert again.reference == receipt.reference
    assert [p.name for p in (server.root / "outbound").iterdir()] == ["clm-000000123.x12"]


async def test_delivered_is_the_file_under_its_final_name(server: SftpServer, tmp_path: Path) -> None:
    connector = _connector(server, tmp_path)
    assert await connector.delivered("clm-000000123.x12") is False
    # A partial upload (hidden temporary name) is not delivered: the rename hands the file over.
    (server.root / "outbound" / ".clm-000000123.x12.part").write_bytes(X12[:10])
    assert await connector.delivered("clm-000000123.x12") is False
    await connector.submit(_submission())
    assert await connector.delivered("clm-000000123.x12") is True


async def test_a_private_key_logs_in_as_the_urls_user(server: SftpServer, tmp_path: Path) -> None:
    pem = server.client_key.export_private_key("openssh").decode()
    connector = _connector(server, tmp_path, secret=pem, user="KEYUSER")
    assert not (await connector.submit(_submission("key-000000123.x12"))).duplicate
    assert (server.root / "outbound" / "key-000000123.x12").read_bytes() == X12


async def test_fetch_pages_by_cursor_and_acknowledge_archives(server: SftpServer, tmp_path: Path) -> None:
    inbound = server.root / "inbound"
    (inbound / "999-a.x12").write_bytes(b"ISA*999 A~")
    (inbound / "277-b.x12").write_bytes(b"ISA*277 B~")
    (inbound / ".partial-upload").write_bytes(b"half")  # someone else's partial file: never picked up
    connector = _connector(server, tmp_path)

    page = await connector.fetch_responses(None)
    assert sorted(f.name for f in page.files) == ["277-b.x12", "999-a.x12"]
    assert {f.name: f.content for f in page.files}["999-a.x12"] == b"ISA*999 A~"
    assert page.cursor is not None
    assert (await connector.fetch_responses(page.cursor)).files == []
    # Dropped within the same second as the last file returned, under a name sorting before it: still new.
    late = inbound / "000-late.x12"
    late.write_bytes(b"ISA*999 LATE~")
    stamp = max((inbound / name).stat().st_mtime for name in ("999-a.x12", "277-b.x12"))
    os.utime(late, (stamp, stamp))
    (newer,) = (await connector.fetch_responses(page.cursor)).files
    assert newer.name == "000-late.x12"
    late.unlink()
    # The same file fetched again (no cursor) carries the same id: the caller's de-duplication key.
    again = await connector.fetch_responses(None)
    assert {f.id for f in again.files} == {f.id for f in page.files}

    for file in page.files:
        await connector.acknowledge(file)
        await connector.acknowledge(file)  # a retried job: no error, no second move
    assert sorted(p.name for p in inbound.iterdir() if p.is_file()) == [".partial-upload"]
    assert sorted(p.name for p in (inbound / "archive").iterdir()) == ["277-b.x12", "999-a.x12"]
    assert (await connector.fetch_responses(None)).files == []


async def test_a_refused_password_is_permanent_and_names_no_secret(
    server: SftpServer, tmp_path: Path
) -> None:
    connector = _connector(server, tmp_path, secret="wrong password")
    with pytest.raises(PermanentConnectorError) as refused:
        await connector.submit(_submission())
    assert "refused the credentials" in str(refused.value)
    assert "wrong password" not in str(refused.value)
    assert refused.value.__cause__ is None
    assert list((server.root / "outbound").iterdir()) == []


async def test_an_unknown_host_key_is_permanent(server: SftpServer, tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    server.known_hosts = f"[127.0.0.1]:{server.port} {other}\n"
    with pytest.raises(PermanentConnectorError, match="host key"):
        await _connector(server, tmp_path).submit(_submission())


async def test_a_server_that_is_down_is_transient(server: SftpServer, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        server.port = sock.getsockname()[1]
    with pytest.raises(TransientConnectorError, match="cannot reach"):
        await _connector(server, tmp_path).fetch_responses(None)


async def test_real_time_inquiries_are_not_an_sftp_service(server: SftpServer, tmp_path: Path) -> None:
    with pytest.raises(PermanentConnectorError, match="real-time"):
        await _connector(server, tmp_path).check_eligibility(b"ISA~")
    with pytest.raises(PermanentConnectorError, match="real-time"):
        await _connector(server, tmp_path).claim_status(b"ISA~")
