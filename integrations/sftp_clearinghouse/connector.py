"""The SFTP connector (asyncssh). One SSH connection per call: batches are minutes apart, and a connection
held open across them would only add a failure mode (half-dead sockets) to handle."""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime

import asyncssh

from rcm.payers.connector import (
    ConnectorConfig,
    ConnectorError,
    InboundFile,
    Receipt,
    ResponsePage,
    Submission,
)

_PARTIAL_PREFIX = "."  # partial uploads are hidden files; clearinghouses skip dot-files when they pick up
_PARTIAL_SUFFIX = ".part"
_DEFAULT_PORT = 22
_MAX_FILE_BYTES = 64 * 1024 * 1024  # an 835 for a large group runs to a few MB; refuse to read a runaway file
_PAGE_FILES = 100


class SftpClearinghouse:
    def __init__(self, config: ConnectorConfig) -> None:
        endpoint = config.endpoint
        if endpoint.scheme != "sftp":
            raise config.permanent("configure", "the sftp connector needs an sftp:// endpoint")
        if not config.known_hosts:
            raise config.permanent(
                "configure", "the endpoint names no known_hosts reference for the host key"
            )
        if config.credentials is None:
            raise config.permanent("configure", "the practice's enrollment names no credentials reference")
        try:
            self._known_hosts = asyncssh.import_known_hosts(config.known_hosts)
        except ValueError:
            raise config.permanent(
                "configure", "the known_hosts reference is not in known_hosts form"
            ) from None
        self.config = config
        base = endpoint.path or "/"
        options = endpoint.options
        self._outbound = posixpath.join(base, options.get("outbound", "outbound"))
        self._inbound = posixpath.join(base, options.get("inbound", "inbound"))
        self._archive = posixpath.join(base, options.get("archive", posixpath.join("inbound", "archive")))
        self._username = endpoint.username or config.submitter_id

    @asynccontextmanager
    async def _sftp(self, operation: str) -> AsyncIterator[asyncssh.SFTPClient]:
        config = self.config
        secret = config.credentials.get_secret_value() if config.credentials else ""
        auth: dict[str, object]
        if secret.lstrip().startswith("-----BEGIN"):
            try:
                key = asyncssh.import_private_key(secret)
            except (asyncssh.KeyImportError, ValueError):
                raise config.permanent(operation, "the credentials are not a readable private key") from None
            auth = {"client_keys": [key], "password": None}
        else:
            auth = {"client_keys": None, "password": secret}
        with _translated(config, operation, "cannot reach the server"):
            async with asyncio.timeout(config.timeout_seconds):
                connection = await asyncssh.connect(
                    config.endpoint.host,
                    port=config.endpoint.port or _DEFAULT_PORT,
                    username=self._username,
                    known_hosts=self._known_hosts,
                    agent_path=None,
                    config=[],  # never ~/.ssh/config: the endpoint says everything
                    preferred_auth=("publickey",) if auth["client_keys"] else ("password",),
                    connect_timeout=config.timeout_seconds,
                    **auth,
                )
        with _translated(config, operation, "the transfer failed"):
            async with connection, connection.start_sftp_client() as sftp:
                async with asyncio.timeout(config.timeout_seconds):
                    yield sftp

    async def submit(self, submission: Submission) -> Receipt:
        final = posixpath.join(self._outbound, submission.file_name)
        partial = posixpath.join(self._outbound, f"{_PARTIAL_PREFIX}{submission.file_name}{_PARTIAL_SUFFIX}")
        async with self._sftp("submit") as sftp:
            # A retried job finds its file already there (same name: same interchange): nothing to send again.
            if await sftp.exists(final):
                return Receipt(reference=submission.file_name, accepted_at=_now(), duplicate=True)
            # Written under a hidden temporary name, then renamed: no clearinghouse picks up half a file.
            async with sftp.open(partial, "wb") as handle:
                await handle.write(submission.x12)
            try:
                await sftp.rename(partial, final)
            except asyncssh.SFTPFailure:
                # Another worker renamed the same interchange first (plain SFTP rename refuses to overwrite).
                await sftp.remove(partial)
                if await sftp.exists(final):
                    return Receipt(reference=submission.file_name, accepted_at=_now(), duplicate=True)
                raise
        return Receipt(reference=submission.file_name, accepted_at=_now())

    async def delivered(self, file_name: str) -> bool:
        """The file is in the outbound folder under its final name (a partial upload is not delivered: the
        rename is what hands it over). A clearinghouse that already picked it up and moved it away would
        read as not delivered; those that do keep it, or ``submit`` finds it and does not send it again."""
        async with self._sftp("delivered") as sftp:
            return bool(await sftp.exists(posixpath.join(self._outbound, file_name)))

    async def fetch_responses(self, cursor: str | None) -> ResponsePage:
        """Files in the inbound folder not yet returned since the cursor, oldest first, up to a page.

        Modification times have one-second resolution, so a file dropped in the same second as the last one
        returned may sort before it: the cursor is that second plus the names already returned within it
        (``mtime:name/name``; a file name holds no ``/``). Acknowledged files leave the folder, so a None
        cursor sweeps whatever is left (a file copied in with an old mtime, say); the id (content digest)
        lets the caller drop a file it already stored."""
        second, seen = _parse_cursor(cursor)
        files: list[InboundFile] = []
        async with self._sftp("fetch") as sftp:
            entries = []
            for entry in await sftp.readdir(self._inbound):
                attrs = entry.attrs
                name = str(entry.filename)
                if name.startswith(".") or attrs.type != asyncssh.FILEXFER_TYPE_REGULAR:
                    continue
                mtime = int(attrs.mtime or 0)
                if mtime > second or (mtime == second and name not in seen):
                    entries.append((mtime, name, attrs.size or 0))
            entries.sort()
            for mtime, name, size in entries[:_PAGE_FILES]:
                if size > _MAX_FILE_BYTES:
                    raise self.config.permanent("fetch", f"an inbound file exceeds {_MAX_FILE_BYTES} bytes")
                async with sftp.open(posixpath.join(self._inbound, name), "rb") as handle:
                    content = await handle.read()
                assert isinstance(content, bytes)  # opened in binary mode (asyncssh types it as AnyStr)
                files.append(
                    InboundFile(
                        id="sha256:" + hashlib.sha256(content).hexdigest(),
                        name=name,
                        content=content,
                        received_at=datetime.fromtimestamp(mtime, UTC),
                    )
                )
                if mtime > second:
                    second, seen = mtime, set()
                seen.add(name)
        if second < 0:
            return ResponsePage(files=files, cursor=None)
        return ResponsePage(files=files, cursor=f"{second}:{'/'.join(sorted(seen))}")

    async def acknowledge(self, file: InboundFile) -> None:
        source = posixpath.join(self._inbound, posixpath.basename(file.name))
        target = posixpath.join(self._archive, posixpath.basename(file.name))
        async with self._sftp("acknowledge") as sftp:
            if not await sftp.exists(source):
                return  # acknowledged before (a retried job): already archived
            if not await sftp.isdir(self._archive):
                await sftp.makedirs(self._archive, exist_ok=True)
            if await sftp.exists(target):
                await sftp.remove(target)  # the same name dropped again later: keep the newer copy
            await sftp.rename(source, target)

    async def check_eligibility(self, x12_270: bytes) -> bytes:
        raise self.config.permanent("eligibility", "an SFTP clearinghouse answers no real-time inquiries")

    async def claim_status(self, x12_276: bytes) -> bytes:
        raise self.config.permanent("claim status", "an SFTP clearinghouse answers no real-time inquiries")

    async def aclose(self) -> None:
        return None


# What retrying cannot fix, by asyncssh's exception; anything else (network, timeouts, a dropped session, a
# server-side failure) is transient.
_PERMANENT: tuple[tuple[type[Exception], str], ...] = (
    (asyncssh.PermissionDenied, "the server refused the credentials"),
    (asyncssh.HostKeyNotVerifiable, "the server's host key is not the one in known_hosts"),
    (asyncssh.SFTPPermissionDenied, "the server refused access to a folder or file"),
    (asyncssh.SFTPNoSuchFile, "a configured folder does not exist on the server"),
)


@contextmanager
def _translated(config: ConnectorConfig, operation: str, transient: str) -> Iterator[None]:
    """asyncssh's and the socket's errors as the protocol's two kinds. Only the exception's type is kept:
    asyncssh messages may quote server banners or paths, and the cause is dropped for the same reason."""
    try:
        yield
    except ConnectorError:
        raise
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        for kind, reason in _PERMANENT:
            if isinstance(exc, kind):
                raise config.permanent(operation, reason) from None
        raise config.transient(operation, f"{transient} ({type(exc).__name__})") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _parse_cursor(cursor: str | None) -> tuple[int, set[str]]:
    """(second, names returned within it); (-1, none) to start from the oldest file."""
    if not cursor:
        return -1, set()
    mtime, sep, names = cursor.partition(":")
    if not sep or not mtime.isdigit():
        return -1, set()  # not one of ours: sweep from the start, the ids de-duplicate
    return int(mtime), {n for n in names.split("/") if n}
