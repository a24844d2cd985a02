"""Field-level envelope encryption of PHI and blind indexes, with per-tenant data keys.

Ciphertext layout (all integers big-endian)::

    0      1            5        17
    | fmt | key version | nonce  | AES-256-GCM ciphertext || 16-byte tag |

The associated data binds the format, tenant, table, column, row id and key version, so a ciphertext copied
to another row, column or tenant, or with any bit flipped, fails authentication. The key version travels in
the clear so decrypt picks the right key while a rotation's background re-encryption is under way.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import struct
import threading
import time
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.crypto import repository
from rcm.crypto.models import DataKey, KeyPurpose, KeyState
from rcm.crypto.provider import KeyProvider, KeyUnwrapError, WrappedKey
from rcm.crypto.stream import SALT_BYTES, StreamOpener, StreamSealer
from rcm.crypto.stream import root_key as stream_root_key
from rcm.kit.tenant import TenantId

FORMAT_V1 = 1
_HEADER = struct.Struct(">BI")  # format byte, key version
_NONCE_BYTES = 12
_TAG_BYTES = 16
_MIN_LENGTH = _HEADER.size + _NONCE_BYTES + _TAG_BYTES
_BODY_AT = _HEADER.size + _NONCE_BYTES
_HEADER_SIZE = _HEADER.size
_AAD_LABEL = b"rcm/phi"
_BLIND_LABEL = b"rcm/blind-index/v1"


class DecryptionError(Exception):
    """A ciphertext could not be decrypted. The message never holds plaintext, ciphertext or key material."""


class UnknownKeyVersionError(DecryptionError):
    """The ciphertext names a key version this keyring does not hold (e.g. a rotation newer than the cache).

    Callers may ``KeyStore.evict`` the tenant and fetch the keyring again once.
    """


class KeysDestroyedError(DecryptionError):
    """The tenant's keys were crypto-shredded: its PHI is unreadable for good and no new key is created."""


def _field(value: bytes) -> bytes:
    # Length-prefixed so that ("ab", "c") and ("a", "bc") give different associated data.
    return struct.pack(">H", len(value)) + value


def _aad(tenant_id: uuid.UUID, table: str, column: str, row_id: uuid.UUID, version: int) -> bytes:
    head, tail = _aad_parts(tenant_id, table, column, version)
    return head + row_id.bytes + tail


@functools.lru_cache(maxsize=4096)
def _aad_parts(tenant_id: uuid.UUID, table: str, column: str, version: int) -> tuple[bytes, bytes]:
    # Everything but the row id repeats across a page of rows: built once per (tenant, column, version).
    # The associated data is byte for byte what it always was (ciphertexts on disk depend on it).
    head = _AAD_LABEL + _HEADER.pack(FORMAT_V1, version) + tenant_id.bytes
    return head, _field(table.encode()) + _field(column.encode())


def normalise(value: str) -> str:
    """Unicode NFKC, case-folded, inner whitespace collapsed to one space, outer whitespace stripped."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


@dataclass(frozen=True, slots=True, repr=False)
class TenantKeyring:
    """The unwrapped keys of one tenant. Keys never leave this object; ``repr`` shows none of them."""

    tenant_id: TenantId
    active_version: int
    _phi_keys: dict[int, AESGCM] = field(compare=False)
    _blind_key: bytes = field(compare=False)
    # Per PHI key version, the root of the streaming-AEAD keys of blobs (``rcm.crypto.stream``).
    _stream_roots: dict[int, bytes] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return f"TenantKeyring(tenant_id={self.tenant_id}, active_version={self.active_version})"

    @property
    def versions(self) -> frozenset[int]:
        return frozenset(self._phi_keys)

    def encrypt(self, *, table: str, column: str, row_id: uuid.UUID, plaintext: bytes) -> bytes:
        version = self.active_version
        nonce = secrets.token_bytes(_NONCE_BYTES)
        aad = _aad(self.tenant_id, table, column, row_id, version)
        return (
            _HEADER.pack(FORMAT_V1, version) + nonce + self._phi_keys[version].encrypt(nonce, plaintext, aad)
        )

    def decrypt(self, *, table: str, column: str, row_id: uuid.UUID, ciphertext: bytes) -> bytes:
        if len(ciphertext) < _MIN_LENGTH:
            raise DecryptionError(f"{table}.{column}: ciphertext too short")
        fmt, version = _HEADER.unpack_from(ciphertext)
        if fmt != FORMAT_V1:
            raise DecryptionError(f"{table}.{column}: unknown ciphertext format {fmt}")
        key = self._phi_keys.get(version)
        if key is None:
            raise UnknownKeyVersionError(f"{table}.{column}: no key version {version} for this tenant")
        nonce = ciphertext[_HEADER.size : _HEADER.size + _NONCE_BYTES]
        body = ciphertext[_HEADER.size + _NONCE_BYTES :]
        try:
            return key.decrypt(nonce, body, _aad(self.tenant_id, table, column, row_id, version))
        except InvalidTag:
            raise DecryptionError(
                f"{table}.{column}: authentication failed (altered, or not this row's value)"
            ) from None

    def opener(self, table: str, columns: Sequence[str]) -> FieldOpener:
        """Decrypts ``columns`` of many rows of ``table`` (a page of a list): see ``FieldOpener``."""
        return FieldOpener(self, table, tuple(columns))

    def encrypt_str(self, *, table: str, column: str, row_id: uuid.UUID, value: str | None) -> bytes | None:
        if value is None:
            return None
        return self.encrypt(table=table, column=column, row_id=row_id, plaintext=value.encode())

    def decrypt_str(
        self, *, table: str, column: str, row_id: uuid.UUID, ciphertext: bytes | None
    ) -> str | None:
        if ciphertext is None:
            return None
        plaintext = self.decrypt(table=table, column=column, row_id=row_id, ciphertext=ciphertext)
        try:
            return plaintext.decode()
        except UnicodeDecodeError:
            raise DecryptionError(f"{table}.{column}: value is not UTF-8 text") from None

    def stream_sealer(self, blob_id: uuid.UUID) -> tuple[int, bytes, StreamSealer]:
        """A sealer for a new blob under the active key: (key version, fresh salt, sealer)."""
        version = self.active_version
        salt = secrets.token_bytes(SALT_BYTES)
        return version, salt, StreamSealer(self._stream_root(version), salt, self.tenant_id, blob_id)

    def stream_opener(self, blob_id: uuid.UUID, *, version: int, salt: bytes) -> StreamOpener:
        return StreamOpener(self._stream_root(version), salt, self.tenant_id, blob_id)

    def _stream_root(self, version: int) -> bytes:
        root = self._stream_roots.get(version)
        if root is None:
            raise UnknownKeyVersionError(f"blob: no key version {version} for this tenant")
        return root

    def blind_index(self, kind: str, value: str) -> bytes:
        """Keyed HMAC-SHA256 (32 bytes) of the normalised value, for equality lookups without plaintext.

        ``kind`` is part of the MAC input, so an MRN and a member id that happen to be equal do not collide.
        For ``name_dob`` the caller passes ``"family|YYYY-MM-DD"``; each ``|`` part is normalised alone.
        """
        if not kind or "\x00" in kind:
            raise ValueError("blind index kind must be a non-empty name")
        normalised = "|".join(normalise(part) for part in value.split("|"))
        message = _BLIND_LABEL + b"\x00" + kind.encode() + b"\x00" + normalised.encode()
        return hmac.digest(self._blind_key, message, "sha256")


class FieldOpener:
    """Opens the PHI columns of one table, row after row, with a keyring's keys.

    The same checks and the same associated data as ``TenantKeyring.decrypt`` (tenant, table, column, row
    id, key version: a value moved to another row, column or tenant still fails), but what repeats across a
    page is looked up once: per key version, the key and each column's associated data around the row id. A
    list of 100 patients opens 600 fields, and the per-field lookups cost as much as the AES-GCM itself.
    Anything unusual (short, unknown format, unknown version) goes through ``decrypt_str`` for its error.
    """

    __slots__ = ("_columns", "_headers", "_keyring", "_table")

    def __init__(self, keyring: TenantKeyring, table: str, columns: tuple[str, ...]) -> None:
        self._keyring, self._table, self._columns = keyring, table, columns
        # A ciphertext's header (format, key version) -> (key, per column: (associated data before the row
        # id, after it)): one look-up per field finds both the format and the key.
        self._headers: dict[bytes, tuple[AESGCM, tuple[tuple[bytes, bytes], ...]]] = {
            _HEADER.pack(FORMAT_V1, version): (
                key,
                tuple(_aad_parts(keyring.tenant_id, table, column, version) for column in columns),
            )
            for version, key in keyring._phi_keys.items()
        }

    def open(self, row_id: uuid.UUID, ciphertexts: Sequence[bytes | None]) -> list[str | None]:
        """The plaintexts of one row's ``ciphertexts``, given in the opener's column order."""
        if len(ciphertexts) != len(self._columns):
            raise ValueError(f"{self._table}: {len(self._columns)} columns to open, got {len(ciphertexts)}")
        rid = row_id.bytes
        headers = self._headers
        out: list[str | None] = []
        for index, ciphertext in enumerate(ciphertexts):
            if ciphertext is None:
                out.append(None)
                continue
            entry = headers.get(ciphertext[:_HEADER_SIZE])
            if entry is None or len(ciphertext) < _MIN_LENGTH:
                out.append(self._slow(index, row_id, ciphertext))
                continue
            key, parts = entry
            head, tail = parts[index]
            try:
                out.append(
                    key.decrypt(
                        ciphertext[_HEADER_SIZE:_BODY_AT], ciphertext[_BODY_AT:], head + rid + tail
                    ).decode()
                )
            except InvalidTag:
                raise DecryptionError(
                    f"{self._table}.{self._columns[index]}: authentication failed"
                    " (altered, or not this row's value)"
                ) from None
            except UnicodeDecodeError:
                raise DecryptionError(
                    f"{self._table}.{self._columns[index]}: value is not UTF-8 text"
                ) from None
        return out

    def _slow(self, index: int, row_id: uuid.UUID, ciphertext: bytes) -> str | None:
        return self._keyring.decrypt_str(
            table=self._table, column=self._columns[index], row_id=row_id, ciphertext=ciphertext
        )


def _wrap_context(tenant_id: TenantId, purpose: str, version: int) -> dict[str, str]:
    return {"tenant": str(tenant_id), "purpose": purpose, "version": str(version)}


def _evict_after_commit(session: AsyncSession, store: KeyStore, tenant_id: TenantId) -> None:
    def _evict(_session: Any) -> None:
        store.evict(tenant_id)

    event.listen(session.sync_session, "after_commit", _evict, once=True)


# How long a process trusts its cached keyring. After a rotation, other processes learn the new key version
# within this time; re-encryption waits that long so no process meets a version it does not know yet.
KEYRING_TTL_SECONDS = 60.0


class KeyStore:
    """Process-wide cache of unwrapped tenant keyrings (bounded LRU, short TTL) in front of ``data_key``.

    The TTL bounds how long another process keeps encrypting under a key that a rotation replaced (harmless:
    that key still decrypts, and the re-encryption job picks those rows up on its next run) and how long a
    shredded tenant's keys live in memory elsewhere (``shred`` evicts locally at once).
    """

    def __init__(
        self, provider: KeyProvider, *, ttl_seconds: float = KEYRING_TTL_SECONDS, max_tenants: int = 1024
    ) -> None:
        self.provider = provider
        self.ttl_seconds = ttl_seconds
        self.max_tenants = max_tenants
        self._cache: OrderedDict[TenantId, tuple[float, TenantKeyring]] = OrderedDict()
        self._lock = threading.Lock()  # the in-process worker's event loop runs in another thread

    def evict(self, tenant_id: TenantId) -> None:
        with self._lock:
            self._cache.pop(tenant_id, None)

    def cached(self, tenant_id: TenantId) -> TenantKeyring | None:
        """The tenant's keyring if this process holds it (within the TTL); None otherwise (``keyring``)."""
        with self._lock:
            entry = self._cache.get(tenant_id)
            if entry is None:
                return None
            expires, keyring = entry
            if expires < time.monotonic():
                del self._cache[tenant_id]
                return None
            self._cache.move_to_end(tenant_id)
            return keyring

    def _remember(self, keyring: TenantKeyring) -> None:
        with self._lock:
            self._cache[keyring.tenant_id] = (time.monotonic() + self.ttl_seconds, keyring)
            self._cache.move_to_end(keyring.tenant_id)
            while len(self._cache) > self.max_tenants:
                self._cache.popitem(last=False)

    async def keyring(self, session: AsyncSession, tenant_id: TenantId) -> TenantKeyring:
        """The tenant's keyring; ``session`` must already carry that tenant's context.

        Creates the tenant's first keys when none exist. Keys created here commit with the caller's
        transaction, so the keyring is cached only once it is loaded from committed rows: a rolled-back
        first request must not leave a cached key that no row in ``data_key`` holds.
        """
        cached = self.cached(tenant_id)
        if cached is not None:
            return cached
        rows = await repository.load_keys(session, tenant_id)
        keyring = self._build(tenant_id, rows)
        if keyring is not None:
            self._remember(keyring)
            return keyring
        # First use of this tenant: take the tenant's key lock, then look again, so two concurrent first
        # requests create one key between them (the partial unique index is the backstop).
        await repository.lock_tenant_keys(session, tenant_id)
        rows = await repository.load_keys(session, tenant_id)
        present = {row.purpose for row in rows if row.state == KeyState.ACTIVE}
        for purpose in KeyPurpose:
            if purpose.value not in present:
                await self._create(session, tenant_id, purpose)
        rows = await repository.load_keys(session, tenant_id)
        keyring = self._build(tenant_id, rows)
        assert keyring is not None
        return keyring

    async def _create(self, session: AsyncSession, tenant_id: TenantId, purpose: KeyPurpose) -> int:
        version = await repository.next_version(session, tenant_id, purpose)
        key = AESGCM.generate_key(bit_length=256)
        wrapped = self.provider.wrap(key, context=_wrap_context(tenant_id, purpose.value, version))
        await repository.insert_key(
            session, tenant_id, purpose=purpose, version=version, kek_id=wrapped.kek_id, wrapped=wrapped.blob
        )
        return version

    def _unwrap(self, row: DataKey) -> bytes:
        assert row.wrapped is not None
        try:
            return self.provider.unwrap(
                WrappedKey(kek_id=row.kek_id, blob=row.wrapped),
                context=_wrap_context(TenantId(row.tenant_id), row.purpose, row.version),
            )
        except KeyUnwrapError as exc:
            raise DecryptionError(f"data key {row.purpose} v{row.version} could not be unwrapped") from exc

    def _build(self, tenant_id: TenantId, rows: Sequence[DataKey]) -> TenantKeyring | None:
        if any(row.state == KeyState.DESTROYED for row in rows):
            raise KeysDestroyedError("this tenant's keys were destroyed (offboarded)")
        active = {row.purpose: row for row in rows if row.state == KeyState.ACTIVE}
        if KeyPurpose.PHI not in active or KeyPurpose.BLIND_INDEX not in active:
            return None
        raw = {row.version: self._unwrap(row) for row in rows if row.purpose == KeyPurpose.PHI}
        return TenantKeyring(
            tenant_id=tenant_id,
            active_version=active[KeyPurpose.PHI].version,
            _phi_keys={version: AESGCM(key) for version, key in raw.items()},
            _blind_key=self._unwrap(active[KeyPurpose.BLIND_INDEX]),
            _stream_roots={version: stream_root_key(key) for version, key in raw.items()},
        )

    async def rotate(self, session: AsyncSession, tenant_id: TenantId) -> int:
        """Make a new PHI key active; the previous one turns 'decrypt_only' until re-encryption retires it.

        Blind-index keys are deliberately not rotated: an index is a deterministic MAC used for lookups, so a
        new key would force recomputing every index of the tenant in one step (lookups would miss half-way).
        They are protected by the KEK (re-wrapped by ``rewrap``) and destroyed by ``shred``.
        """
        await self.keyring(session, tenant_id)  # a tenant with no keys yet gets its first ones
        await repository.lock_tenant_keys(session, tenant_id)
        await repository.set_state(
            session, tenant_id, KeyPurpose.PHI, old=KeyState.ACTIVE, new=KeyState.DECRYPT_ONLY
        )
        version = await self._create(session, tenant_id, KeyPurpose.PHI)
        self.evict(tenant_id)
        _evict_after_commit(session, self, tenant_id)
        return version

    async def rewrap(self, session: AsyncSession, tenant_id: TenantId) -> int:
        """Re-wrap every live key of the tenant under the provider's current KEK; returns how many changed.

        Keys already wrapped under the current KEK are left as they are (re-running is a no-op), so after a
        KEK rotation the old KEK can be retired once every tenant reports 0.
        """
        await repository.lock_tenant_keys(session, tenant_id)
        current = self.provider.current_kek_id
        count = 0
        for row in await repository.load_keys(session, tenant_id):
            if row.wrapped is None or row.kek_id == current:
                continue
            key = self._unwrap(row)
            wrapped = self.provider.wrap(key, context=_wrap_context(tenant_id, row.purpose, row.version))
            await repository.store_rewrapped(
                session, tenant_id, row.purpose, row.version, kek_id=wrapped.kek_id, wrapped=wrapped.blob
            )
            count += 1
        self.evict(tenant_id)
        return count

    async def shred(self, session: AsyncSession, tenant_id: TenantId) -> None:
        """Crypto-shred: overwrite every wrapped key of the tenant with NULL, so its PHI is unreadable.

        The rows stay (state 'destroyed') as evidence. PostgreSQL keeps dead tuple versions until VACUUM and
        backups keep old pages; those hold key material wrapped under the KEK, so backups older than the shred
        must be expired per the retention policy (or the KEK itself retired) for the shred to be complete.
        """
        await repository.lock_tenant_keys(session, tenant_id)
        if await repository.destroy_all(session, tenant_id) == 0:
            # A tenant that never had keys gets a tombstone, so no later request creates fresh ones.
            await repository.insert_tombstone(session, tenant_id)
        self.evict(tenant_id)
        _evict_after_commit(session, self, tenant_id)
