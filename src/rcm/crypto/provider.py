"""Key-encryption-key providers: they wrap and unwrap data keys and never hand out the KEK itself.

The interface is the one cloud KMSs offer (encrypt/decrypt of a small key under a named master key, with an
encryption context that must match on decrypt), so a KMS or Vault-transit provider drops in beside the local
file provider used in development.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rcm.config import Settings

_WRAP_VERSION = b"\x01"


class KeyUnwrapError(Exception):
    """The wrapped key was altered, belongs to another context, or its KEK is gone."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    kek_id: str
    blob: bytes


class KeyProvider(Protocol):
    @property
    def current_kek_id(self) -> str: ...

    def wrap(self, key: bytes, *, context: dict[str, str]) -> WrappedKey: ...

    def unwrap(self, wrapped: WrappedKey, *, context: dict[str, str]) -> bytes: ...


def _context_bytes(context: dict[str, str]) -> bytes:
    return "\x1f".join(f"{k}={context[k]}" for k in sorted(context)).encode()


class LocalFileKeyProvider:
    """AES-256-GCM key wrapping under KEKs kept in a directory, one file per KEK id (``<id>.kek``).

    The newest file (by id, which sorts by creation time) is the current KEK; older ones stay readable so
    data keys wrapped under them can be unwrapped and re-wrapped. Meant for development and single hosts.
    """

    def __init__(self, directory: Path, *, create: bool = True) -> None:
        self.directory = directory
        if create and not any(directory.glob("*.kek")):
            self.add_kek()
        self._keks = self._load()
        if not self._keks:
            raise KeyUnwrapError(f"no key-encryption key found in {directory}")

    def _load(self) -> dict[str, bytes]:
        keks: dict[str, bytes] = {}
        for path in sorted(self.directory.glob("*.kek")):
            key = path.read_bytes()
            if len(key) != 32:
                raise KeyUnwrapError(f"{path} does not hold a 32-byte key")
            keks[path.stem] = key
        return keks

    def add_kek(self) -> str:
        """Create a new KEK and make it current (re-wrap data keys afterwards with ``rcm keys rotate``)."""
        from datetime import UTC, datetime

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        kek_id = "kek-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{kek_id}.kek"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
        self._keks = self._load()
        return kek_id

    @property
    def current_kek_id(self) -> str:
        return max(self._keks)

    def wrap(self, key: bytes, *, context: dict[str, str]) -> WrappedKey:
        kek_id = self.current_kek_id
        nonce = secrets.token_bytes(12)
        aad = kek_id.encode() + b"\x1e" + _context_bytes(context)
        blob = _WRAP_VERSION + nonce + AESGCM(self._keks[kek_id]).encrypt(nonce, key, aad)
        return WrappedKey(kek_id=kek_id, blob=blob)

    def unwrap(self, wrapped: WrappedKey, *, context: dict[str, str]) -> bytes:
        kek = self._keks.get(wrapped.kek_id)
        if kek is None or not wrapped.blob.startswith(_WRAP_VERSION):
            raise KeyUnwrapError("unknown key-encryption key or format")
        nonce, body = wrapped.blob[1:13], wrapped.blob[13:]
        aad = wrapped.kek_id.encode() + b"\x1e" + _context_bytes(context)
        try:
            return AESGCM(kek).decrypt(nonce, body, aad)
        except Exception as exc:  # cryptography raises InvalidTag
            raise KeyUnwrapError("wrapped key failed authentication") from exc


def key_provider(settings: Settings) -> KeyProvider:
    if settings.kek_provider == "local":
        return LocalFileKeyProvider(settings.kek_dir, create=settings.env != "prod")
    raise ValueError(f"unknown RCM_KEK_PROVIDER {settings.kek_provider!r}")
