"""The STREAM construction: what it refuses (truncation, reordering, swaps between blobs and tenants)."""

from __future__ import annotations

import os
import uuid

import pytest

from rcm.crypto.stream import StreamError, StreamOpener, StreamSealer, root_key

ROOT = root_key(os.urandom(32))
TENANT = uuid.uuid4()


def _seal(chunks: list[bytes], blob_id: uuid.UUID, *, salt: bytes, root: bytes = ROOT) -> list[bytes]:
    sealer = StreamSealer(root, salt, TENANT, blob_id)
    return [sealer.seal(c, last=i == len(chunks) - 1) for i, c in enumerate(chunks)]


def _open(sealed: list[bytes], blob_id: uuid.UUID, *, salt: bytes, tenant: uuid.UUID = TENANT) -> bytes:
    opener = StreamOpener(ROOT, salt, tenant, blob_id)
    out = b"".join(opener.open(c, last=i == len(sealed) - 1) for i, c in enumerate(sealed))
    opener.finish()
    return out


def test_round_trip_and_empty() -> None:
    blob, salt = uuid.uuid4(), os.urandom(32)
    chunks = [b"a" * 10, b"b" * 10, b"c" * 3]
    assert _open(_seal(chunks, blob, salt=salt), blob, salt=salt) == b"".join(chunks)
    assert _open(_seal([b""], blob, salt=salt), blob, salt=salt) == b""


def test_truncation_at_a_chunk_boundary_is_refused() -> None:
    blob, salt = uuid.uuid4(), os.urandom(32)
    sealed = _seal([b"one", b"two", b"three"], blob, salt=salt)
    # Dropping the tail and presenting the new last chunk as final fails its tag (sealed as not-last).
    with pytest.raises(StreamError, match="chunk 1"):
        _open(sealed[:2], blob, salt=salt)
    # A reader that stops early without a final chunk is refused by finish().
    opener = StreamOpener(ROOT, salt, TENANT, blob)
    opener.open(sealed[0], last=False)
    with pytest.raises(StreamError, match="truncated"):
        opener.finish()


def test_reordering_is_refused() -> None:
    blob, salt = uuid.uuid4(), os.urandom(32)
    sealed = _seal([b"one", b"two", b"three"], blob, salt=salt)
    with pytest.raises(StreamError, match="chunk 0"):
        _open([sealed[1], sealed[0], sealed[2]], blob, salt=salt)


def test_appending_after_the_final_chunk_is_refused() -> None:
    blob, salt = uuid.uuid4(), os.urandom(32)
    sealer = StreamSealer(ROOT, salt, TENANT, blob)
    sealer.seal(b"end", last=True)
    with pytest.raises(StreamError, match="after the final"):
        sealer.seal(b"more", last=True)


def test_a_chunk_from_another_blob_or_tenant_is_refused() -> None:
    blob, other, salt = uuid.uuid4(), uuid.uuid4(), os.urandom(32)
    mine = _seal([b"one", b"two"], blob, salt=salt)
    # Same salt and tenant, another blob id: another key and other associated data.
    theirs = _seal([b"one", b"two"], other, salt=salt)
    with pytest.raises(StreamError):
        _open([theirs[0], mine[1]], blob, salt=salt)
    with pytest.raises(StreamError):
        _open(mine, blob, salt=salt, tenant=uuid.uuid4())
    with pytest.raises(StreamError):
        _open(_seal([b"x"], blob, salt=salt, root=root_key(os.urandom(32))), blob, salt=salt)


def test_a_flipped_bit_is_refused() -> None:
    blob, salt = uuid.uuid4(), os.urandom(32)
    sealed = _seal([b"hello"], blob, salt=salt)
    flipped = bytes([sealed[0][0] ^ 1]) + sealed[0][1:]
    with pytest.raises(StreamError):
        _open([flipped], blob, salt=salt)
