"""The claim state machine, as data: which transitions exist, and the 409 that names the current state.

A claim is ``created`` when its encounter passes the scrubber, ``ready`` once its payer is one the practice
is enrolled with, ``submitted`` when its batch is sent. The 999/277CA acknowledgments make it ``accepted`` or
``rejected``; the 835 ``paid``, ``partially_paid`` or ``denied``; an appeal reopens an adjudicated claim. A
rejected claim never reached the payer's adjudication system: it is corrected and sent again as an original
(back to ``ready``). A claim the payer holds is changed only by a replacement (frequency 7) or a void
(frequency 8) that references the payer's claim control number.
"""

from __future__ import annotations

import enum

from rcm.kit.errors import Conflict, FieldError


class ClaimState(enum.StrEnum):
    CREATED = "created"
    READY = "ready"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    DENIED = "denied"
    APPEALED = "appealed"
    CLOSED = "closed"
    VOIDED = "voided"


class Frequency(enum.IntEnum):
    """CLM05-3, the claim frequency type code."""

    ORIGINAL = 1
    REPLACEMENT = 7
    VOID = 8


class Responsibility(enum.StrEnum):
    """Which payer of the patient's (SBR01: P, S, T)."""

    PRIMARY = "primary"
    SECONDARY = "secondary"
    TERTIARY = "tertiary"


class Cause(enum.StrEnum):
    """What made a transition happen (recorded on its event beside the actor)."""

    SCRUB = "scrub"  # the scrubber passed the encounter
    BILLER = "biller"  # a person's action
    SUBMISSION = "submission"  # a connector sent the claim's batch
    ACKNOWLEDGMENT = "acknowledgment"  # 999 / 277CA
    REMITTANCE = "remittance"  # 835
    STATUS = "status"  # 277 answer to a status inquiry
    SYSTEM = "system"  # a job (batching, follow-up)


S = ClaimState
ADJUDICATED = frozenset({S.PAID, S.PARTIALLY_PAID, S.DENIED})
# The payer holds the claim under its claim control number: only a replacement or a void changes it.
HELD_BY_PAYER = frozenset({S.ACCEPTED, *ADJUDICATED, S.APPEALED})
TERMINAL = frozenset({S.CLOSED, S.VOIDED})

TRANSITIONS: dict[ClaimState, frozenset[ClaimState]] = {
    S.CREATED: frozenset({S.READY, S.CLOSED, S.VOIDED}),
    S.READY: frozenset({S.SUBMITTED, S.CLOSED, S.VOIDED}),
    S.SUBMITTED: frozenset({S.ACCEPTED, S.REJECTED}),
    # A 277CA may still reject what a 999 accepted; the 835 adjudicates.
    S.ACCEPTED: frozenset({S.REJECTED, *ADJUDICATED, S.CLOSED, S.VOIDED}),
    S.REJECTED: frozenset({S.READY, S.CLOSED, S.VOIDED}),
    # An adjudicated claim may be re-adjudicated (a reversal and correction: CLP02 = 22), appealed, closed
    # (also when a replacement supersedes it) or voided.
    S.PAID: frozenset({S.PARTIALLY_PAID, S.DENIED, S.APPEALED, S.CLOSED, S.VOIDED}),
    S.PARTIALLY_PAID: frozenset({S.PAID, S.DENIED, S.APPEALED, S.CLOSED, S.VOIDED}),
    S.DENIED: frozenset({S.PAID, S.PARTIALLY_PAID, S.APPEALED, S.CLOSED, S.VOIDED}),
    S.APPEALED: frozenset({*ADJUDICATED, S.CLOSED, S.VOIDED}),
    S.CLOSED: frozenset(),
    S.VOIDED: frozenset(),
}


def allowed(current: ClaimState, target: ClaimState) -> bool:
    return target in TRANSITIONS[current]


def illegal(current: ClaimState, action: str) -> Conflict:
    """The 409 for an action the claim's state does not allow; it names the current state at ``/state``."""
    return Conflict(
        f"A claim in state {current.value} cannot be {action}.",
        errors=[FieldError("/state", f"is {current.value}")],
    )


def check(current: ClaimState, target: ClaimState) -> None:
    if not allowed(current, target):
        raise illegal(current, f"moved to {target.value}")
