"""Streaming AEAD for files holding PHI (uploads, documents, raw X12, statements): the STREAM construction.

Hoang, Reyhanitabar, Rogaway and Vizár's STREAM ("Online Authenticated-Encryption and its Nonce-Reuse
Misuse-Resistance", CRYPTO 2015), over AES-256-GCM, in the shape Google Tink's AES-GCM-HKDF streaming AEAD
and age use:

- Each blob gets a fresh random 32-byte salt. Its key is HKDF-SHA256 over the tenant's blob root key (itself
  HKDF'd from the tenant's PHI data key of a given version) with that salt, and info binding the tenant and
  the blob id. Two blobs never share a key, and a blob of one tenant cannot be opened with another's keys.
- The plaintext is cut into chunks (64 KiB by default); chunk ``i`` is sealed with the 12-byte nonce
  ``prefix (7 bytes) || i (4 bytes, big-endian) || last (1 byte: 1 on the final chunk, else 0)`` and
  associated data binding the tenant, the blob id and ``i``.

What that buys (each is tested): reordering or dropping chunks fails (the counter is in the nonce); cutting
the stream at a chunk boundary fails (no chunk carrying the last flag); appending after the last chunk fails;
a chunk copied from another blob or tenant fails (other key, other associated data). An empty plaintext is
one empty final chunk. Memory is one chunk at a time, whatever the size of the file.
"""

from __future__ import annotations

import struct
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT_BYTES = 32
TAG_BYTES = 16
DEFAULT_CHUNK_BYTES = 64 * 1024
MAX_CHUNKS = 2**32 - 1  # the counter's width: 256 TiB at 64 KiB chunks
_PREFIX_BYTES = 7
_ROOT_INFO = b"rcm/blob-stream/v1/root"
_KEY_INFO = b"rcm/blob-stream/v1/key"
_AAD_LABEL = b"rcm/blob-stream/v1/chunk"


class StreamError(Exception):
    """A stream could not be opened: altered, truncated, reordered, or not this blob's. Names no content."""


def root_key(phi_key: bytes) -> bytes:
    """The tenant's blob root key for one PHI key version (a separate key from the field-encryption one)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_ROOT_INFO).derive(phi_key)


def _derive(root: bytes, salt: bytes, tenant_id: uuid.UUID, blob_id: uuid.UUID) -> tuple[AESGCM, bytes]:
    material = HKDF(
        algorithm=hashes.SHA256(),
        length=32 + _PREFIX_BYTES,
        salt=salt,
        info=_KEY_INFO + tenant_id.bytes + blob_id.bytes,
    ).derive(root)
    return AESGCM(material[:32]), material[32:]


class _Chunks:
    def __init__(self, root: bytes, salt: bytes, tenant_id: uuid.UUID, blob_id: uuid.UUID) -> None:
        if len(salt) != SALT_BYTES:
            raise StreamError("bad salt length")
        self._aead, self._prefix = _derive(root, salt, tenant_id, blob_id)
        self._aad_head = _AAD_LABEL + tenant_id.bytes + blob_id.bytes
        self._index = 0
        self._finished = False

    def _nonce_aad(self, last: bool) -> tuple[bytes, bytes]:
        if self._finished:
            raise StreamError("data after the final chunk")
        if self._index > MAX_CHUNKS:
            raise StreamError("too many chunks")
        counter = struct.pack(">I", self._index)
        return self._prefix + counter + (b"\x01" if last else b"\x00"), self._aad_head + counter

    @property
    def finished(self) -> bool:
        return self._finished


class StreamSealer(_Chunks):
    """Seals one blob's chunks in order; the caller marks the final one."""

    def seal(self, plaintext: bytes, *, last: bool) -> bytes:
        nonce, aad = self._nonce_aad(last)
        sealed = self._aead.encrypt(nonce, plaintext, aad)
        self._index += 1
        self._finished = last
        return sealed


class StreamOpener(_Chunks):
    """Opens one blob's chunks in order. ``finish`` must be called at the end: it refuses a cut stream."""

    def open(self, ciphertext: bytes, *, last: bool) -> bytes:
        nonce, aad = self._nonce_aad(last)
        try:
            plaintext = self._aead.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise StreamError(f"chunk {self._index} failed authentication") from None
        self._index += 1
        self._finished = last
        return plaintext

    def finish(self) -> None:
        if not self._finished:
            raise StreamError("the stream ends before its final chunk (truncated)")
