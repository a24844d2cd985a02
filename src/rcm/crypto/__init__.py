"""Field-level envelope encryption of PHI, key providers, blind indexes, rotation and crypto-shredding."""

from __future__ import annotations

from rcm.crypto.keyring import (
    DecryptionError,
    KeysDestroyedError,
    KeyStore,
    TenantKeyring,
    UnknownKeyVersionError,
    normalise,
)
from rcm.crypto.provider import KeyProvider, KeyUnwrapError, LocalFileKeyProvider, WrappedKey, key_provider

__all__ = [
    "DecryptionError",
    "KeyProvider",
    "KeyStore",
    "KeyUnwrapError",
    "KeysDestroyedError",
    "LocalFileKeyProvider",
    "TenantKeyring",
    "UnknownKeyVersionError",
    "WrappedKey",
    "key_provider",
    "normalise",
]
