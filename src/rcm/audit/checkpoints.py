"""Signed checkpoints of the hash chains.

A checkpoint signs (tenant, seq, hash, created_at, key_id) with an Ed25519 key kept OUTSIDE the database,
under ``<data_dir>/audit-keys``, and held by the checkpointer alone (never the API or the database). Someone
who can rewrite the audit tables (a database superuser) can recompute an unkeyed hash chain, but cannot sign:
history before the last checkpoint is anchored, and a chain cut short after it no longer contains the
checkpointed seq/hash. Each checkpoint is also copied outside the database (``rcm.audit.anchors``), so
deleting checkpoint rows, or a whole chain, is detected too. Verifying needs the public key (``*.pub.pem``).

Since version 2 a checkpoint also signs the RFC 6962 Merkle root (``rcm.audit.merkle``) of the event hashes
it newly covers, ``first_seq..seq``: a practice proves one event's inclusion with log2(n) hashes, offline,
without any other event. Checkpoints written before that (no root) keep their version 1 message and verify
as they always did.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit import merkle, repository
from rcm.audit.records import format_instant
from rcm.config import Settings
from rcm.kit.models import utcnow

CHECKPOINT_DOMAIN = "rcm-audit-checkpoint-v1"
CHECKPOINT_DOMAIN_V2 = "rcm-audit-checkpoint-v2"


def key_directory(settings: Settings) -> Path:
    return settings.data_dir / "audit-keys"


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


def checkpoint_message(
    *,
    tenant_id: uuid.UUID,
    seq: int,
    hash_: bytes,
    created_at: datetime,
    key_id: str,
    first_seq: int | None = None,
    merkle_root: bytes | None = None,
) -> bytes:
    """The exact bytes signed; ``audit/verify_export.py`` rebuilds them the same way. With a Merkle root
    (version 2) the covered range and the root are signed too."""
    lines = [str(tenant_id), str(seq), hash_.hex(), format_instant(created_at), key_id]
    if merkle_root is None:
        return "\n".join([CHECKPOINT_DOMAIN, *lines]).encode()
    if first_seq is None:
        raise ValueError("a checkpoint with a Merkle root names the first seq it covers")
    return "\n".join([CHECKPOINT_DOMAIN_V2, *lines, str(first_seq), merkle_root.hex()]).encode()


@dataclass(frozen=True, slots=True)
class CheckpointSigner:
    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def load_signer(directory: Path, *, create: bool) -> CheckpointSigner:
    """The newest signing key in ``directory``; creates one (and its public half) when allowed."""
    keys = sorted(directory.glob("*.key.pem")) if directory.exists() else []
    if not keys:
        if not create:
            raise FileNotFoundError(f"no audit checkpoint signing key in {directory}")
        return _create_key(directory)
    path = max(keys, key=lambda p: p.stat().st_mtime)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return CheckpointSigner(key_id_of(private.public_key()), private)


def _create_key(directory: Path) -> CheckpointSigner:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = Ed25519PrivateKey.generate()
    key_id = key_id_of(private.public_key())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(directory / f"{key_id}.key.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    (directory / f"{key_id}.pub.pem").write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return CheckpointSigner(key_id, private)


def load_public_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        public = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError(f"{path} is not an Ed25519 public key")
        keys[key_id_of(public)] = public
    return keys


def public_keys_in(directory: Path) -> dict[str, Ed25519PublicKey]:
    return load_public_keys(sorted(directory.glob("*.pub.pem"))) if directory.exists() else {}


def signature_valid(checkpoint: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> bool | None:
    """True/False for a known key; None when the checkpoint's key is not among ``keys``."""
    public = keys.get(checkpoint["key_id"])
    if public is None:
        return None
    root = checkpoint.get("merkle_root")
    message = checkpoint_message(
        tenant_id=checkpoint["tenant_id"],
        seq=checkpoint["seq"],
        hash_=bytes(checkpoint["hash"]),
        created_at=checkpoint["created_at"],
        key_id=checkpoint["key_id"],
        first_seq=checkpoint.get("first_seq"),
        merkle_root=None if root is None else bytes(root),
    )
    try:
        public.verify(bytes(checkpoint["signature"]), message)
    except InvalidSignature:
        return False
    return True


async def write_checkpoints(
    session: AsyncSession,
    tenant_ids: Iterable[uuid.UUID],
    signer: CheckpointSigner,
    *,
    every_events: int | None = None,
    every_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Sign each tenant's chain head (as sealed by the chainer) and insert the checkpoints.

    Without ``every_events``/``every_seconds`` every tenant with new sealed events is signed. With them, a
    tenant is signed once that many events were sealed since its last checkpoint, or that many seconds have
    passed since it (and something new was sealed): that bounds the unanchored window.

    The session is the chainer's (role rcm_audit; the app role may not insert checkpoints) and its tenant
    context must cover ``tenant_ids``. The caller commits, then copies the rows to the anchor store.
    """
    # Materialised once: the ids are read twice, and a generator would be empty the second time.
    ids = list(dict.fromkeys(tenant_ids))
    latest = {row["tenant_id"]: row for row in await repository.latest_checkpoints(session, ids)}
    heads = await repository.chain_heads(session)
    now = utcnow()
    written: list[dict[str, Any]] = []
    for tenant_id in ids:
        head = heads.get(tenant_id)
        if head is None or head[0] == 0:
            continue
        seq, hash_ = head
        last = latest.get(tenant_id)
        if last is not None and last["seq"] >= seq:
            continue
        if last is not None and (every_events is not None or every_seconds is not None):
            enough_events = every_events is not None and seq - last["seq"] >= every_events
            long_enough = (
                every_seconds is not None and (now - last["created_at"]).total_seconds() >= every_seconds
            )
            if not (enough_events or long_enough):
                continue
        # The Merkle tree covers what this checkpoint adds to the last one: its leaves are the chain hashes
        # of first_seq..seq, read from the seals (the chainer's own rows, in this transaction).
        first_seq = 1 if last is None else int(last["seq"]) + 1
        leaves = await repository.seal_hashes(session, tenant_id, first_seq, seq)
        merkle_root = merkle.root(leaves)
        # Microseconds are what PostgreSQL keeps, so the signed text survives the round trip.
        created_at = utcnow()
        message = checkpoint_message(
            tenant_id=tenant_id,
            seq=seq,
            hash_=hash_,
            created_at=created_at,
            key_id=signer.key_id,
            first_seq=first_seq,
            merkle_root=merkle_root,
        )
        row = {
            "tenant_id": tenant_id,
            "seq": seq,
            "hash": hash_,
            "created_at": created_at,
            "key_id": signer.key_id,
            "signature": signer.sign(message),
            "first_seq": first_seq,
            "merkle_root": merkle_root,
        }
        await repository.insert_checkpoint(session, row)
        written.append(row)
    return written


def public_key_pem(signer: CheckpointSigner) -> bytes:
    return signer.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def checkpoint_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """JSON form of a checkpoint, as handed to compliance staff with an export (a version 1 checkpoint, with
    no Merkle root, has neither ``first_seq`` nor ``merkle_root``)."""
    document: dict[str, Any] = {
        "tenant_id": str(row["tenant_id"]),
        "seq": row["seq"],
        "hash": bytes(row["hash"]).hex(),
        "created_at": format_instant(row["created_at"]),
        "key_id": row["key_id"],
        "signature": base64.b64encode(bytes(row["signature"])).decode(),
    }
    if row.get("merkle_root") is not None:
        document["first_seq"] = int(row["first_seq"])
        document["merkle_root"] = bytes(row["merkle_root"]).hex()
    return document
