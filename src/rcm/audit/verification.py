"""Verifying the access log: each tenant's sealed chain, its head, its signed checkpoints, and the external
copy of those checkpoints (``rcm.audit.anchors``).

The database alone cannot vouch for itself: a superuser can rewrite events and re-chain every later hash, cut
the tail, delete a whole chain, delete checkpoint rows, or do any of it with ``session_replication_role =
replica`` so no trigger fires. What they cannot do is sign, or reach the anchor store. So every anchored
checkpoint must still be found in the database's chain (same position, same hash) and in its checkpoint rows,
and every checkpoint row in the anchor store. Only public material is needed: the Ed25519 public keys.

Events not yet sealed by the chainer are reported as such (``unsealed``), not as problems; an event below the
chainer's watermark without a seal, though, was skipped or stripped of its seal and is a problem.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit import merkle, repository
from rcm.audit.checkpoints import checkpoint_document, key_directory, public_keys_in, signature_valid
from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo
from rcm.audit.records import GENESIS_HASH, AuditRecord, format_instant, parse_instant
from rcm.audit.trail import record
from rcm.identity.principal import Principal
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantId


class ProblemKind(StrEnum):
    """What verification found wrong in a tenant's chain (the wire form is the value)."""

    EDITED = "edited"  # an event's content no longer matches its hash
    DELETED = "deleted"  # a gap in seq, or a seal whose event row is gone
    INSERTED = "inserted"  # a second event at one seq, or events beyond the chain head
    REORDERED = "reordered"  # an intact event that sits at another position than the one it was chained at
    BROKEN_LINK = "broken_link"  # prev_hash does not name the previous event: chain rewritten or spliced
    TRUNCATED = "truncated"  # the chain ends before its head, a signed checkpoint or an anchored one
    HEAD_MISMATCH = "head_mismatch"  # the chain head names another hash than the last event's
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"  # a signed checkpoint's hash is not the event's at that seq
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    SKIPPED = "skipped"  # an event below the chainer's watermark that has no seal
    # the anchor store knows this tenant's chain; the database has none of it
    CHAIN_VANISHED = "chain_vanished"
    CHECKPOINT_MISSING = "checkpoint_missing"  # anchored outside, but the database's checkpoint row is gone
    UNANCHORED = "unanchored"  # a checkpoint row (older than a few minutes) the anchor store does not hold
    ANCHOR_MISMATCH = "anchor_mismatch"  # the anchor store holds another document for this checkpoint


# Short names used by the checks below and by the tests; each is the enum member.
EDITED = ProblemKind.EDITED
DELETED = ProblemKind.DELETED
INSERTED = ProblemKind.INSERTED
REORDERED = ProblemKind.REORDERED
BROKEN_LINK = ProblemKind.BROKEN_LINK
TRUNCATED = ProblemKind.TRUNCATED
HEAD_MISMATCH = ProblemKind.HEAD_MISMATCH
CHECKPOINT_MISMATCH = ProblemKind.CHECKPOINT_MISMATCH
BAD_SIGNATURE = ProblemKind.BAD_SIGNATURE
UNKNOWN_KEY = ProblemKind.UNKNOWN_KEY
SKIPPED = ProblemKind.SKIPPED
CHAIN_VANISHED = ProblemKind.CHAIN_VANISHED
CHECKPOINT_MISSING = ProblemKind.CHECKPOINT_MISSING
UNANCHORED = ProblemKind.UNANCHORED
ANCHOR_MISMATCH = ProblemKind.ANCHOR_MISMATCH

_REORDER_SEARCH_LIMIT = 256
UNANCHORED_GRACE = timedelta(
    minutes=5
)  # re-hash attempts per broken event when looking for where it came from

Anchors = Mapping[uuid.UUID, Sequence[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int | None
    kind: ProblemKind
    detail: str


@dataclass(slots=True)
class TenantReport:
    tenant_id: uuid.UUID
    events: int = 0  # sealed events
    unsealed: int = 0  # events the chainer has not reached yet (normal for a few seconds)
    head_seq: int | None = None
    checkpoints: int = 0
    anchors: int = 0
    last_checkpoint_seq: int | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}


@dataclass(slots=True)
class VerifyReport:
    tenants: list[TenantReport]
    # Database-wide findings, e.g. append-only triggers someone disabled, or no anchor store to compare with.
    global_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.global_problems and all(t.ok for t in self.tenants)

    def for_tenant(self, tenant_id: uuid.UUID) -> TenantReport:
        return next(t for t in self.tenants if t.tenant_id == tenant_id)


@dataclass(slots=True)
class _Entry:
    seq: int
    prev_hash: bytes
    hash: bytes
    intact: bool  # content matches hash
    missing: bool = False  # the seal is there, its event row is not
    original_seq: int | None = None  # for moved events: where it was chained


async def verify(
    session: AsyncSession,
    tenant_ids: Iterable[uuid.UUID],
    *,
    public_keys: Mapping[str, Ed25519PublicKey] | None = None,
    anchors: Anchors | None = None,
    copy_grace: timedelta = UNANCHORED_GRACE,
) -> VerifyReport:
    """Check each tenant's chain, chain head and signed checkpoints, and, given the anchor store's
    documents (``anchors``, read BEFORE this call: checkpoints are committed before they are copied, so
    every anchor read then has its row by now), compare them with the external copy.

    The session's context must cover ``tenant_ids``; checkpoint signatures are checked against
    ``public_keys`` (default: the public keys in ``<data_dir>/audit-keys``).
    """
    if public_keys is None:
        from rcm.config import get_settings

        public_keys = public_keys_in(key_directory(get_settings()))
    ids = sorted(set(tenant_ids))
    report = VerifyReport(tenants=[])
    disabled = await repository.disabled_triggers(session)
    if disabled:
        report.global_problems.append("append-only triggers are disabled: " + ", ".join(disabled))
    all_checkpoints = await repository.checkpoints(session, ids)
    below = await repository.watermark(session)
    for tenant_id in ids:
        cps = [c for c in all_checkpoints if c["tenant_id"] == tenant_id]
        tenant = await _verify_tenant(session, tenant_id, cps, public_keys, below)
        if anchors is not None:
            _compare_anchors(
                tenant,
                anchors.get(tenant_id, ()),
                cps,
                public_keys,
                tenant.hash_at,
                settled=utcnow() - copy_grace,
            )
        report.tenants.append(tenant.report)
    return report


@dataclass(slots=True)
class _Verified:
    report: TenantReport
    hash_at: dict[int, bytes]


async def _verify_tenant(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    checkpoints: Sequence[Mapping[str, Any]],
    keys: Mapping[str, Ed25519PublicKey],
    below: int,
) -> _Verified:
    out = TenantReport(tenant_id=tenant_id, checkpoints=len(checkpoints))
    entries: list[_Entry] = []
    broken: list[tuple[_Entry, AuditRecord]] = []
    async for item in repository.stream_chain(session, tenant_id):
        if isinstance(item, repository.Seal):
            entries.append(_Entry(item.seq, item.prev_hash, item.hash, intact=True, missing=True))
            continue
        assert item.seq is not None
        assert item.prev_hash is not None
        assert item.hash is not None
        entry = _Entry(item.seq, item.prev_hash, item.hash, item.computed_hash() == item.hash)
        entries.append(entry)
        if not entry.intact:
            broken.append((entry, item))
    out.events = len(entries)
    _find_moves(broken)
    hash_at = _walk_chain(entries, out.problems)

    pending, skipped = await repository.unsealed_counts(session, tenant_id, below)
    out.unsealed = pending
    if skipped:
        out.problems.append(
            Problem(None, SKIPPED, f"{skipped} event(s) below the chainer's watermark have no seal")
        )

    head = await repository.chain_head(session, tenant_id)
    out.head_seq = head[0] if head else None
    last_seq = max(hash_at, default=0)
    if head is None:
        if entries:
            out.problems.append(Problem(None, HEAD_MISMATCH, "events exist but the chain head is missing"))
    elif head[0] > last_seq:
        out.problems.append(Problem(last_seq + 1, TRUNCATED, f"chain ends at {last_seq}, head is {head[0]}"))
    elif head[0] < last_seq:
        out.problems.append(
            Problem(head[0] + 1, INSERTED, f"events after the head ({head[0]}) up to {last_seq}")
        )
    elif head[0] > 0 and hash_at.get(head[0]) != head[1]:
        out.problems.append(Problem(head[0], HEAD_MISMATCH, "the head's hash is not the last event's"))

    for cp in checkpoints:
        seq = int(cp["seq"])
        out.last_checkpoint_seq = max(out.last_checkpoint_seq or 0, seq)
        _check_signed(out, cp, keys, hash_at, last_seq, source="signed checkpoint")
    return _Verified(out, hash_at)


def _check_signed(
    out: TenantReport,
    cp: Mapping[str, Any],
    keys: Mapping[str, Ed25519PublicKey],
    hash_at: Mapping[int, bytes],
    last_seq: int,
    *,
    source: str,
) -> bool:
    """Signature, then position and hash against the chain; False if the document cannot be trusted."""
    seq = int(cp["seq"])
    valid = signature_valid(cp, keys)
    if valid is None:
        out.problems.append(Problem(seq, UNKNOWN_KEY, f"{source} signed with unknown key {cp['key_id']}"))
        return False
    if not valid:
        out.problems.append(Problem(seq, BAD_SIGNATURE, f"{source}: signature does not verify"))
        return False
    if seq > last_seq:
        kind = CHAIN_VANISHED if last_seq == 0 else TRUNCATED
        out.problems.append(Problem(seq, kind, f"{source} at {seq}, chain ends at {last_seq}"))
    elif hash_at.get(seq) != bytes(cp["hash"]):
        out.problems.append(Problem(seq, CHECKPOINT_MISMATCH, f"event hash differs from the {source}"))
    elif cp.get("merkle_root") is not None:
        # Version 2: the signed Merkle root must be the tree of the chain's hashes over the signed range. A
        # range the chain walk already found broken (a deletion, a move) is reported once, there.
        first = int(cp["first_seq"])
        leaves = [hash_at.get(s) for s in range(first, seq + 1)]
        present = [leaf for leaf in leaves if leaf is not None]
        reported = any(p.seq is not None and first <= p.seq <= seq for p in out.problems)
        if not reported and len(present) == len(leaves) and merkle.root(present) != bytes(cp["merkle_root"]):
            out.problems.append(
                Problem(seq, CHECKPOINT_MISMATCH, f"the {source}'s Merkle root is not that of {first}..{seq}")
            )
    return True


def _anchor_row(document: Mapping[str, Any]) -> dict[str, Any]:
    """An anchor document in the shape of a checkpoint row (raises ValueError/KeyError if malformed)."""
    root = document.get("merkle_root")
    first = document.get("first_seq")
    return {
        "tenant_id": uuid.UUID(str(document["tenant_id"])),
        "seq": int(document["seq"]),
        "hash": bytes.fromhex(str(document["hash"])),
        "created_at": parse_instant(str(document["created_at"])),
        "key_id": str(document["key_id"]),
        "signature": base64.b64decode(str(document["signature"]), validate=True),
        "first_seq": None if first is None else int(first),
        "merkle_root": None if root is None else bytes.fromhex(str(root)),
    }


def _compare_anchors(
    verified: _Verified,
    documents: Sequence[Mapping[str, Any]],
    checkpoints: Sequence[Mapping[str, Any]],
    keys: Mapping[str, Ed25519PublicKey],
    hash_at: Mapping[int, bytes],
    *,
    settled: datetime,
) -> None:
    out = verified.report
    last_seq = max(hash_at, default=0)
    in_db = {(int(c["seq"]), str(c["key_id"])): c for c in checkpoints}
    anchored: set[tuple[int, str]] = set()
    for document in documents:
        try:
            row = _anchor_row(document)
        except (KeyError, ValueError, TypeError):
            out.problems.append(Problem(None, ANCHOR_MISMATCH, f"unreadable anchor {document.get('name')}"))
            continue
        if row["tenant_id"] != out.tenant_id:
            out.problems.append(Problem(row["seq"], ANCHOR_MISMATCH, "anchor filed under another tenant"))
            continue
        out.anchors += 1
        key = (row["seq"], row["key_id"])
        anchored.add(key)
        if not _check_signed(out, row, keys, hash_at, last_seq, source="anchored checkpoint"):
            continue
        stored = in_db.get(key)
        if stored is None:
            out.problems.append(
                Problem(row["seq"], CHECKPOINT_MISSING, "anchored outside the database, its row is gone")
            )
        elif checkpoint_document(stored) != checkpoint_document(row):
            out.problems.append(
                Problem(row["seq"], ANCHOR_MISMATCH, "the database's checkpoint differs from its anchor")
            )
    # Database first, then the copy: a checkpoint of the last few minutes (after ``settled``) may not be
    # copied yet, or was written after the caller read the store, which is not a finding.
    for key, cp in in_db.items():
        if key not in anchored and cp["created_at"] < settled:
            out.problems.append(
                Problem(
                    key[0],
                    UNANCHORED,
                    f"checkpoint of {format_instant(cp['created_at'])} is not in the external copy",
                )
            )


def vanished_tenants(anchors: Anchors, known: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """Tenants the anchor store has checkpoints for that the database does not list at all."""
    present = set(known)
    return sorted(t for t in anchors if t not in present)


def _find_moves(broken: list[tuple[_Entry, AuditRecord]]) -> None:
    """A reordered event is intact at another position: a permutation of events only moves them among the
    positions that now fail, so those are the candidates (nearest first)."""
    positions = sorted({entry.seq for entry, _ in broken})
    for entry, rec in broken:
        candidates = sorted((s for s in positions if s != entry.seq), key=lambda s: abs(s - entry.seq))
        for seq in candidates[:_REORDER_SEARCH_LIMIT]:
            if rec.computed_hash(seq=seq) == rec.hash:
                entry.original_seq = seq
                break


def _walk_chain(entries: list[_Entry], problems: list[Problem]) -> dict[int, bytes]:
    """Walk positions in order; returns the hash kept at each position."""
    hash_at: dict[int, bytes] = {}
    expected, prev, prev_moved = 1, GENESIS_HASH, False
    for seq, group_iter in itertools.groupby(entries, key=lambda e: e.seq):
        group = list(group_iter)
        chosen = next((e for e in group if e.intact and e.prev_hash == prev), group[0])
        problems.extend(
            Problem(seq, INSERTED, "another event claims this position") for e in group if e is not chosen
        )
        after_gap = seq > expected
        if after_gap:
            problems.append(Problem(expected, DELETED, f"events {expected}..{seq - 1} are missing"))
        if chosen.missing:
            problems.append(Problem(seq, DELETED, "the event sealed at this position is gone"))
        elif chosen.original_seq is not None:
            problems.append(Problem(seq, REORDERED, f"event chained at {chosen.original_seq} now sits here"))
        elif not chosen.intact:
            problems.append(Problem(seq, EDITED, "content does not match its hash"))
        elif chosen.prev_hash != prev and not after_gap and not prev_moved:
            problems.append(Problem(seq, BROKEN_LINK, "does not follow the previous event"))
        hash_at[seq] = chosen.hash
        # The event after a moved one cannot link to it; the move is already reported.
        expected, prev, prev_moved = seq + 1, chosen.hash, chosen.original_seq is not None
    return hash_at


def record_verify(
    session: AsyncSession, report: VerifyReport, *, actor: Principal, request: RequestInfo
) -> None:
    """``audit.verify``: checking the log is itself an access to it, one event per tenant verified."""
    for tenant in report.tenants:
        record(
            session,
            AuditEvent(
                tenant_id=TenantId(tenant.tenant_id),
                event_type="audit.verify",
                action=Action.EXECUTE,
                outcome=Outcome.SUCCESS,
                request=request,
                actor=actor,
                resource_type="audit_event",
                detail={
                    "ok": tenant.ok,
                    "events": tenant.events,
                    "problems": len(tenant.problems),
                    "tenants": len(report.tenants),
                },
            ),
        )
