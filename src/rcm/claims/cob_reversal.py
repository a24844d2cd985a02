"""A primary's payment reversed (835 CLP02 22) after its next payer's claim was built: the coordination of
benefits is revisited in the same transaction.

The secondary (or tertiary) claim billed the patient's share the primary's 835 left, and took it over on the
ledger (``coordination_of_benefits``). The reversal takes back everything that 835 posted on the primary, that
share included, so the share the next claim holds goes back to the primary first (``coordination_reversed``):
the primary's patient receivable ends where the reversal leaves it (nothing owed for a payment that no longer
stands), and the next claim's insurance receivable loses what it billed. That claim is then flagged for
correction: a billing-queue item (reason ``cob_correction``) on it, so a biller replaces or voids it once the
primary's correction (or a new adjudication) comes; a claim with a live item keeps it. Audited. Its
replacement (frequency 7) takes over the share the primary's adjudication leaves then
(``ledger.take_over_share_left``): the correction's, not the reversed payment's. A next claim not sent yet
has nothing to replace: it stays out of batches until the correction comes (``unbatched_ready``), and then
takes over the share the correction leaves (``secondary.revised``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from rcm.audit.events import Action
from rcm.claims.applying import Applying
from rcm.claims.building import CLAIM, open_billing_item
from rcm.claims.models import Claim
from rcm.claims.secondary_repository import ClaimAdjudicationRepository
from rcm.ledger import service as ledger
from rcm.workqueue.models import BillingReason


async def primaries_reversed(work: Applying, primaries: Sequence[Claim]) -> None:
    """For each reversed claim of ``primaries``, its live next payers' claims: the share given back, each
    flagged for correction (counted ``cob_corrections``)."""
    if not primaries:
        return
    scope = work.scope
    nexts = await scope.repo(ClaimAdjudicationRepository).next_claims(list({p.id for p in primaries}))
    if not nexts:
        return
    now = datetime.now(UTC)
    returned = 0
    for claim in nexts:
        assert claim.primary_claim_id is not None
        returned += await ledger.give_back_prior_share(scope, claim.id, claim.primary_claim_id)
        await open_billing_item(scope, claim.id, BillingReason.COB_CORRECTION, now=now)
        work.count("cob_corrections")
    scope.audit(
        "claim.cob_reversed",
        Action.UPDATE,
        resource_type=CLAIM,
        resource_ids=[c.id for c in nexts],
        patient_ids=list({c.patient_id for c in nexts}),
        detail={"claims": len(nexts), "returned_cents": returned},
    )
