"""RFC 6962 Merkle trees over a tenant's chain range: what lets a practice check one event offline.

Each checkpoint with a root covers the tenant's events ``first_seq..seq`` (from just after its previous
checkpoint up to the head it signs). The tree's leaves are those events' chain hashes, in seq order, and it
is hashed as Certificate Transparency's (RFC 6962 section 2.1): a leaf is ``SHA-256(0x00 || data)``, a node
``SHA-256(0x01 || left || right)``, and a tree of n leaves splits at the largest power of two below n. An
inclusion proof (section 2.1.1) is the leaf's index and its audit path: log2(n) hashes, none of which shows
anything of another event, let alone another practice's.

``audit/verify_export.py`` re-implements ``root_from_path`` without importing the app (stdlib only): change
one, change the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(_root_of_leaves(leaves[:k]), _root_of_leaves(leaves[k:]))


def root(data: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of ``data`` (the entries, not yet leaf-hashed)."""
    if not data:
        return EMPTY_ROOT
    return _root_of_leaves([leaf_hash(d) for d in data])


def audit_path(data: Sequence[bytes], index: int) -> list[bytes]:
    """The inclusion proof of entry ``index``: sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(data):
        raise IndexError("leaf index outside the tree")
    return _path([leaf_hash(d) for d in data], index)


def _path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_path(leaves[:k], index), _root_of_leaves(leaves[k:])]
    return [*_path(leaves[k:], index - k), _root_of_leaves(leaves[:k])]


def root_from_path(data: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``path`` proves ``data`` at ``index`` of a tree of ``size`` leaves hashes to (RFC 9162
    section 2.1.3.2); None when the path has the wrong length for that position."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    current = leaf_hash(data)
    for sibling in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            current = node_hash(sibling, current)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    return current if sn == 0 else None
