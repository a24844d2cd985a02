"""The external copy of the signed checkpoints: what a database superuser cannot reach.

A checkpoint row in the database can be deleted by whoever owns the database; its copy here cannot (a
directory on another volume today, an object store with write-once retention tomorrow). ``rcm audit verify``
compares the database against this copy: a chain cut below an anchored position, rewritten under it, or gone
altogether, and checkpoint rows deleted, are all reported.

The store is a tiny write-once key/value interface so an object-store adapter (S3 Object Lock, GCS
retention) is a dozen lines: ``put_once`` never overwrites, ``get`` reads, ``names`` lists by prefix.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from rcm.audit.checkpoints import checkpoint_document
from rcm.config import Settings

CHECKPOINT_PREFIX = "checkpoints/"
KEY_PREFIX = "keys/"


class AnchorStore(Protocol):
    """Write-once storage outside the database (a directory, or an object store bucket)."""

    def put_once(self, name: str, data: bytes) -> bytes:
        """Store ``data`` under ``name`` unless something is there already; returns what is stored."""
        ...

    def get(self, name: str) -> bytes | None: ...

    def names(self, prefix: str) -> Iterator[str]:
        """Every stored name starting with ``prefix``."""
        ...


class DirectoryAnchorStore:
    """An ``AnchorStore`` in a directory (a volume the database host cannot write)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("anchor names stay inside the store")
        return path

    def put_once(self, name: str, data: bytes) -> bytes:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return data

    def get(self, name: str) -> bytes | None:
        path = self._path(name)
        return path.read_bytes() if path.is_file() else None

    def names(self, prefix: str) -> Iterator[str]:
        base = self.root.resolve()
        # Walk only the folder the prefix names (one tenant's checkpoints, say), not the whole store.
        start = self._path(prefix.rsplit("/", 1)[0]) if "/" in prefix else base
        if not start.is_dir():
            return
        for path in sorted(start.rglob("*")):
            if path.is_file():
                name = path.relative_to(base).as_posix()
                if name.startswith(prefix):
                    yield name


def anchor_name(tenant_id: uuid.UUID, seq: int, key_id: str) -> str:
    # Zero-padded so names sort in chain order within a tenant.
    return f"{CHECKPOINT_PREFIX}{tenant_id}/{seq:020d}.{key_id}.json"


def publish_checkpoint(store: AnchorStore, row: Mapping[str, Any]) -> bool:
    """Copy one checkpoint to the store; True if the store now holds exactly it."""
    document = checkpoint_document(row)
    data = (json.dumps(document, sort_keys=True) + "\n").encode()
    stored = store.put_once(anchor_name(row["tenant_id"], int(row["seq"]), str(row["key_id"])), data)
    return stored == data


def publish_public_key(store: AnchorStore, key_id: str, pem: bytes) -> None:
    """Auditors and practices verifying offline fetch the public half next to the checkpoints."""
    store.put_once(f"{KEY_PREFIX}{key_id}.pub.pem", pem)


def read_anchors(
    store: AnchorStore, tenant_ids: Iterable[uuid.UUID] | None = None
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The anchored checkpoint documents, by tenant: of ``tenant_ids``, or of every tenant the store knows
    (how a vanished tenant is found). Unreadable entries come back under their tenant with
    ``"unreadable": True`` so verification reports them rather than skipping them."""
    found: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    prefixes = [CHECKPOINT_PREFIX] if tenant_ids is None else [f"{CHECKPOINT_PREFIX}{t}/" for t in tenant_ids]
    names = [name for prefix in prefixes for name in store.names(prefix)]
    for name in names:
        tenant_part = name[len(CHECKPOINT_PREFIX) :].split("/", 1)[0]
        try:
            tenant_id = uuid.UUID(tenant_part)
        except ValueError:
            continue
        raw = store.get(name)
        try:
            document = json.loads(raw or b"")
            if not isinstance(document, dict):
                raise TypeError
        except (ValueError, TypeError):
            found[tenant_id].append({"name": name, "unreadable": True})
            continue
        document["name"] = name
        found[tenant_id].append(document)
    return dict(found)


def anchor_store(settings: Settings, *, create: bool = False) -> DirectoryAnchorStore | None:
    """The configured store (``RCM_AUDIT_ANCHOR_DIR``, default ``<data_dir>/audit-anchors``); None when
    the directory does not exist and ``create`` is false (an API pod without the volume)."""
    root = settings.anchor_dir
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return DirectoryAnchorStore(root) if root.is_dir() else None
