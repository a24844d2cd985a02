"""The blob store: ``put`` a stream, ``open`` it again as a stream of plaintext chunks, ``delete`` it.

Every file holding PHI goes through here (documents, bulk uploads; later raw X12 and statements). The bytes
are encrypted chunk by chunk with the tenant's keys (``rcm.crypto.stream``: STREAM over AES-256-GCM, a key per
blob), so memory stays at one chunk whatever the file size. Where the ciphertext chunks live is a setting:

- ``postgres``: ``rcm.blob_chunk`` rows, tenant-owned with RLS forced, written in the caller's transaction;
- ``directory``: one file per blob under ``RCM_BLOB_DIR/<tenant id>/<blob id>[.g<generation>]`` (opaque ids
  and a number, never PHI), each chunk as a 4-byte big-endian length and the sealed chunk. The file is
  written as ``<name>.part`` and renamed when complete; a transaction that then rolls back leaves an orphan
  file with no row (unreadable without its row's salt), which the sweep (``rcm.blobs.sweep``) removes.

A blob has a generation: re-sealing it under a newer key (``rcm.blobs.reseal``, after a key rotation) writes
the next generation's chunks or file beside the current one and flips the row to it in one UPDATE, so a
reader holds one generation from start to end and never sees a mix.

The metadata row (``rcm.blob``: key version, salt, chunking, size, SHA-256 of the plaintext) is in PostgreSQL
either way, in the caller's transaction. The caller (a service holding a tenant scope) audits the access.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import struct
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, TypeVar

from rcm.blobs.models import Blob, BlobBackend, BlobState
from rcm.blobs.repository import BlobRepository
from rcm.config import Settings
from rcm.crypto.keyring import TenantKeyring
from rcm.crypto.stream import DEFAULT_CHUNK_BYTES, TAG_BYTES, StreamError, StreamOpener
from rcm.kit.errors import FieldError, NotFound, PayloadTooLarge
from rcm.kit.repository import TenantScopedRepository
from rcm.kit.tenant import TenantId

R = TypeVar("R", bound=TenantScopedRepository[Blob])
_LENGTH = struct.Struct(">I")
PART_SUFFIX = ".part"
_FILE_NAME = re.compile(r"([0-9a-f]{32})(?:\.g([1-9][0-9]{0,9}))?(\.part)?")
# A reader that finds its generation's file gone (re-sealed between its metadata read and its open) reads
# the metadata again; a blob re-sealed this many times in that instant is treated as missing.
_REOPEN_ATTEMPTS = 3


class BlobScope(Protocol):
    """What the store needs from a unit of work: the tenant's keys and repositories (a ``TenantScope``)."""

    @property
    def keyring(self) -> TenantKeyring: ...

    @property
    def tenant_id(self) -> TenantId: ...

    def repo(self, repository: type[R], /) -> R: ...


@dataclass(frozen=True, slots=True)
class BlobRef:
    id: uuid.UUID
    size: int  # plaintext bytes
    sha256: str  # hex digest of the plaintext
    content_type: str


@dataclass(frozen=True, slots=True)
class BlobFileName:
    """What a file under RCM_BLOB_DIR/<tenant id>/ is, read from its name alone (which holds no PHI)."""

    blob_id: uuid.UUID
    generation: int
    partial: bool  # still being written (``.part``), or left by a writer that died


def file_name(blob_id: uuid.UUID, generation: int) -> str:
    # Generation 0 keeps the name blob files had before re-sealing existed: nothing on disk had to move.
    return blob_id.hex if generation == 0 else f"{blob_id.hex}.g{generation}"


def parse_file_name(name: str) -> BlobFileName | None:
    """The blob and generation a file name stands for; None for a name the store never writes."""
    match = _FILE_NAME.fullmatch(name)
    if match is None:
        return None
    return BlobFileName(uuid.UUID(hex=match[1]), int(match[2] or 0), match[3] is not None)


def _ref(row: Blob) -> BlobRef:
    assert row.sha256 is not None
    return BlobRef(id=row.id, size=row.size, sha256=row.sha256.hex(), content_type=row.content_type)


async def rechunk(stream: AsyncIterable[bytes], size: int) -> AsyncIterator[tuple[bytes, bool]]:
    """``stream`` cut into pieces of exactly ``size`` bytes (the last may be shorter or empty), each with a
    flag telling whether it is the last. Holds at most two pieces' worth of bytes."""
    buffer = bytearray()
    pending: bytes | None = None
    async for data in stream:
        buffer += data
        while len(buffer) >= size:
            if pending is not None:
                yield pending, False
            pending = bytes(buffer[:size])
            del buffer[:size]
    if pending is not None and buffer:
        yield pending, False
        pending = None
    yield (pending if pending is not None else bytes(buffer)), True


class BlobStore:
    def __init__(
        self,
        backend: BlobBackend = BlobBackend.POSTGRES,
        directory: Path | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_BYTES,
    ) -> None:
        if backend is BlobBackend.DIRECTORY and directory is None:
            raise ValueError("the directory backend needs a directory (RCM_BLOB_DIR)")
        self.backend = backend
        self.directory = directory
        self.chunk_size = chunk_size

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStore:
        return cls(BlobBackend(settings.blob_backend), settings.blob_dir)

    # Writing ------------------------------------------------------------------------------------------------

    async def put(
        self,
        scope: BlobScope,
        stream: AsyncIterable[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> BlobRef:
        """Encrypt and store ``stream``; refuses (413) as soon as it passes ``max_bytes``."""
        blob_id = uuid.uuid4()
        version, salt, sealer = scope.keyring.stream_sealer(blob_id)
        row = Blob(
            tenant_id=scope.tenant_id,
            id=blob_id,
            content_type=content_type,
            backend=self.backend,
            state=BlobState.WRITING,
            key_version=version,
            salt=salt,
            chunk_size=self.chunk_size,
            chunk_count=0,
            size=0,
            sha256=None,
            generation=0,
        )
        repo = scope.repo(BlobRepository)
        await repo.insert(row)
        digest = hashlib.sha256()
        size = 0
        count = 0
        file: IO[bytes] | None = None
        part: Path | None = None
        if self.backend is BlobBackend.DIRECTORY:
            final = self.path(scope.tenant_id, blob_id, 0)
            part = final.with_name(final.name + PART_SUFFIX)
            file = await asyncio.to_thread(create_file, part)
        try:
            async for plaintext, last in rechunk(stream, self.chunk_size):
                size += len(plaintext)
                if max_bytes is not None and size > max_bytes:
                    raise PayloadTooLarge(
                        f"The file is larger than {max_bytes} bytes.", errors=[FieldError("", "too large")]
                    )
                digest.update(plaintext)
                sealed = sealer.seal(plaintext, last=last)
                if file is None:
                    await repo.add_chunk(row, count, sealed)
                else:
                    await asyncio.to_thread(file.write, frame(sealed))
                count += 1
            if file is not None and part is not None:
                await asyncio.to_thread(close_into_place, file, part, final)
                file = None
        finally:
            if file is not None and part is not None:
                await asyncio.to_thread(discard, file, part)
        await repo.complete(row, chunk_count=count, size=size, sha256=digest.digest())
        return _ref(row)

    # Reading ------------------------------------------------------------------------------------------------

    async def ref(self, scope: BlobScope, blob_id: uuid.UUID) -> BlobRef:
        """The blob's reference, or 404 (unknown, another tenant's, or never completed)."""
        row = await scope.repo(BlobRepository).get_complete(blob_id)
        if row is None:
            raise NotFound
        return _ref(row)

    async def open(self, scope: BlobScope, blob_id: uuid.UUID) -> AsyncIterator[bytes]:
        """The blob's plaintext, chunk by chunk, read in ``scope``'s transaction. Raises ``StreamError`` on
        any tampering (at the chunk where it is found: a consumer streaming to a client must be ready for a
        failure mid-way)."""

        @asynccontextmanager
        async def same() -> AsyncIterator[BlobScope]:
            yield scope

        async for plaintext in self.open_in_steps(same, blob_id):
            yield plaintext

    async def open_in_steps(
        self,
        open_scope: Callable[[], AbstractAsyncContextManager[BlobScope]],
        blob_id: uuid.UUID,
        *,
        chunks_per_step: int = 16,
    ) -> AsyncIterator[bytes]:
        """As ``open``, with no transaction held while the consumer works: the metadata and then each step of
        ``chunks_per_step`` chunks are read in short transactions of their own (``open_scope()``). A long
        consumer (a job reading a large file, a slow client) must not hold a snapshot open: the audit
        chainer seals only behind the oldest running transaction, and vacuum cleans only behind it."""
        opened = await self._metadata(open_scope, blob_id)
        row, opener = opened.row, opened.opener
        count, last_index = row.chunk_count, row.chunk_count - 1
        if row.backend is BlobBackend.POSTGRES:
            for start in range(0, count, chunks_per_step):
                stop = min(start + chunks_per_step, count)
                async with open_scope() as scope:
                    sealed = await scope.repo(BlobRepository).chunks(
                        row, start, stop, generation=opened.generation
                    )
                for seq in range(start, stop):
                    data = sealed.pop(seq, None)
                    if data is None:
                        raise StreamError(f"chunk {seq} is missing")
                    yield opener.open(data, last=seq == last_index)
        else:
            file: IO[bytes] | None = None
            for _ in range(_REOPEN_ATTEMPTS):
                try:
                    file = await asyncio.to_thread(
                        self.path(opened.tenant_id, blob_id, opened.generation).open, "rb"
                    )
                    break
                except FileNotFoundError:
                    # Re-sealed between the metadata read and this open: the old file goes once the flip
                    # commits. Nothing was yielded yet, so the new generation is read whole instead.
                    again = await self._metadata(open_scope, blob_id)
                    if again.generation == opened.generation:
                        break
                    opened = again
                    row, opener = opened.row, opened.opener
                    count, last_index = row.chunk_count, row.chunk_count - 1
            if file is None:
                raise StreamError("the blob's file is missing")
            try:
                limit = row.chunk_size + TAG_BYTES
                for seq in range(count):
                    data = await asyncio.to_thread(read_chunk, file, limit)
                    yield opener.open(data, last=seq == last_index)
                if await asyncio.to_thread(file.read, 1):
                    raise StreamError("data after the final chunk")
            finally:
                await asyncio.to_thread(file.close)
        opener.finish()

    async def _metadata(
        self, open_scope: Callable[[], AbstractAsyncContextManager[BlobScope]], blob_id: uuid.UUID
    ) -> _Opened:
        async with open_scope() as scope:
            row = await scope.repo(BlobRepository).get_complete(blob_id)
            if row is None:
                raise NotFound
            opener = scope.keyring.stream_opener(row.id, version=row.key_version, salt=row.salt)
            # Copied out now: the generation read here is the one every later step reads.
            return _Opened(row, opener, TenantId(row.tenant_id), row.generation)

    async def read_all(self, scope: BlobScope, blob_id: uuid.UUID) -> bytes:
        """The whole plaintext (small blobs and tests only)."""
        return b"".join([chunk async for chunk in self.open(scope, blob_id)])

    # Deleting -----------------------------------------------------------------------------------------------

    async def delete(self, scope: BlobScope, blob_id: uuid.UUID) -> None:
        repo = scope.repo(BlobRepository)
        row = await repo.get(blob_id)
        if row is None:
            raise NotFound
        await repo.remove(row)
        if row.backend is BlobBackend.DIRECTORY:
            await asyncio.to_thread(self.path(TenantId(row.tenant_id), row.id, row.generation).unlink, True)

    def tenant_directory(self, tenant_id: TenantId) -> Path:
        assert self.directory is not None
        return self.directory / tenant_id.hex

    def path(self, tenant_id: TenantId, blob_id: uuid.UUID, generation: int) -> Path:
        # Opaque ids only: a path never carries a name, a patient or a practice's slug.
        return self.tenant_directory(tenant_id) / file_name(blob_id, generation)


@dataclass(slots=True)
class _Opened:
    row: Blob
    opener: StreamOpener
    tenant_id: TenantId
    generation: int


def frame(sealed: bytes) -> bytes:
    """A sealed chunk as the directory backend stores it: 4-byte big-endian length, then the chunk."""
    return _LENGTH.pack(len(sealed)) + sealed


def create_file(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def close_into_place(file: IO[bytes], part: Path, final: Path) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    part.rename(final)


def discard(file: IO[bytes], part: Path) -> None:
    file.close()
    part.unlink(missing_ok=True)


def read_chunk(file: IO[bytes], limit: int) -> bytes:
    head = file.read(_LENGTH.size)
    if len(head) != _LENGTH.size:
        raise StreamError("the stream ends before its final chunk (truncated)")
    (length,) = _LENGTH.unpack(head)
    if length > limit:
        raise StreamError("a chunk is longer than the blob's chunk size")
    sealed = file.read(length)
    if len(sealed) != length:
        raise StreamError("the stream ends before its final chunk (truncated)")
    return sealed
