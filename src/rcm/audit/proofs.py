"""Inclusion proofs: one event, its place in the Merkle tree of the checkpoint that covers it, and that
signed checkpoint. What ``audit/verify_export.py --proof`` checks offline with the public key alone.

The proof carries the event's exact canonical record and its chain links, so the verifier re-hashes the
event from its content (hash = SHA-256(prev_hash || record)), climbs the audit path from that hash to the
root, and checks the root's signature. No other event, and nothing of another practice, is needed or shown.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from rcm.audit import merkle, repository
from rcm.audit.checkpoints import checkpoint_document
from rcm.audit.events import Action, AuditEvent, Outcome, RequestInfo
from rcm.audit.records import AuditRecord
from rcm.audit.trail import record
from rcm.identity.principal import Principal
from rcm.kit.errors import Conflict, NotFound
from rcm.kit.tenant import TenantId

PROOF_VERSION = 1


@dataclass(frozen=True, slots=True)
class InclusionProof:
    event: AuditRecord  # sealed
    checkpoint: dict[str, Any]  # the checkpoint row (with first_seq and merkle_root)
    leaf_index: int
    tree_size: int
    path: list[bytes]

    def document(self) -> dict[str, Any]:
        """The JSON a practice keeps and hands to ``verify_export.py --proof``."""
        assert self.event.seq is not None
        assert self.event.prev_hash is not None
        assert self.event.hash is not None
        return {
            "version": PROOF_VERSION,
            "event": {
                "id": str(self.event.id),
                "tenant_id": str(self.event.tenant_id),
                "seq": self.event.seq,
                "prev_hash": self.event.prev_hash.hex(),
                "hash": self.event.hash.hex(),
                "record": base64.b64encode(self.event.canonical()).decode(),
            },
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "audit_path": [h.hex() for h in self.path],
            "checkpoint": checkpoint_document(self.checkpoint),
        }


async def inclusion_proof(
    session: AsyncSession, event_id: uuid.UUID, *, actor: Principal, request: RequestInfo
) -> InclusionProof:
    """The proof of ``event_id`` among the tenants of the session's context (RLS: another practice's event
    is not found). 409 while the event is not yet sealed, or sealed but not yet under a checkpoint with a
    Merkle root (the chainer signs within ``RCM_AUDIT_CHECKPOINT_EVERY_SECONDS``), or only under checkpoints
    written before roots existed."""
    event = await repository.sealed_event(session, event_id)
    if event is None:
        raise NotFound
    if event.seq is None:
        raise Conflict("The event is not sealed into its chain yet; ask again in a few seconds.")
    checkpoint = await repository.covering_checkpoint(session, event.tenant_id, event.seq)
    if checkpoint is None:
        raise Conflict(
            "No signed checkpoint with a Merkle root covers this event yet; ask again after the next "
            "checkpoint (events checkpointed before proofs existed have none: verify them with an export)."
        )
    first, last = int(checkpoint["first_seq"]), int(checkpoint["seq"])
    leaves = await repository.seal_hashes(session, event.tenant_id, first, last)
    index = event.seq - first
    record(
        session,
        AuditEvent(
            tenant_id=TenantId(event.tenant_id),
            event_type="audit.proof",
            action=Action.EXECUTE,
            outcome=Outcome.SUCCESS,
            request=request,
            actor=actor,
            resource_type="audit_event",
            resource_ids=(event.id,),
            detail={"seq": event.seq, "checkpoint_seq": last, "tree_size": len(leaves)},
        ),
    )
    return InclusionProof(
        event=event,
        checkpoint=checkpoint,
        leaf_index=index,
        tree_size=len(leaves),
        path=merkle.audit_path(leaves, index) if 0 <= index < len(leaves) else [],
    )
