"""Break-glass: the emergency-access procedure of 45 CFR 164.312(a)(2)(ii), as rules.

- Only staff (coder, biller, supervisor) and admins may ask, and only after logging in with a second
  factor; a grant is also honoured only for a token carrying MFA (``rcm.identity.access``), so a grant
  opened with MFA cannot be used from a session without it.
- A request names a category and gives a reason of real length (``MIN_REASON_CHARS`` letters or digits).
- The window is short: ``RCM_BREAK_GLASS_DEFAULT_MINUTES`` unless asked otherwise, never more than
  ``RCM_BREAK_GLASS_MAX_MINUTES`` (and never more than the four hours the database allows).
- With ``RCM_BREAK_GLASS_REQUIRE_APPROVAL`` a grant is ``pending`` and grants nothing until a different
  person, a supervisor or an admin with MFA, approves it; the window starts at approval. A request nobody
  approves within ``PENDING_LAPSES_AFTER`` lapses.
- The person, a supervisor or an admin may revoke a grant; revoked, expired, pending and lapsed grants are
  never honoured.
- At most ``RCM_BREAK_GLASS_MAX_GRANTS_PER_DAY`` requests per person in any rolling 24 hours, all tenants.

Services never commit; the route's transaction does, together with the audit event it records.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from rcm.config import Settings
from rcm.identity.break_glass_store import BreakGlassStore
from rcm.identity.models import BreakGlassCategory, BreakGlassGrant, BreakGlassStatus
from rcm.identity.principal import Principal, Role
from rcm.kit.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, RCMError
from rcm.kit.models import utcnow
from rcm.kit.tenant import TenantId

MIN_REASON_CHARS = 20
MAX_REASON_CHARS = 2000
PENDING_LAPSES_AFTER = timedelta(hours=1)
_DAY = timedelta(hours=24)


class TooManyGrants(RCMError):
    status_code = 429
    title = "Too many break-glass requests"


@dataclass(frozen=True, slots=True)
class BreakGlassPolicy:
    default_minutes: int
    max_minutes: int
    require_approval: bool
    max_grants_per_day: int

    @classmethod
    def from_settings(cls, settings: Settings) -> BreakGlassPolicy:
        return cls(
            default_minutes=settings.break_glass_default_minutes,
            max_minutes=settings.break_glass_max_minutes,
            require_approval=settings.break_glass_require_approval,
            max_grants_per_day=settings.break_glass_max_grants_per_day,
        )


def meaningful_chars(reason: str) -> int:
    """Letters and digits: padding, punctuation and repeated filler do not make a reason."""
    return sum(1 for c in reason if c.isalnum()) if len(set(reason.lower())) >= 5 else 0


def grant_status(grant: BreakGlassGrant, now: datetime) -> BreakGlassStatus:
    """SQL twin: ``rcm.identity.break_glass_store.status_condition``."""
    if grant.revoked_at is not None:
        return BreakGlassStatus.REVOKED
    if grant.starts_at is None or grant.expires_at is None:
        lapsed = grant.created_at <= now - PENDING_LAPSES_AFTER
        return BreakGlassStatus.LAPSED if lapsed else BreakGlassStatus.PENDING
    if grant.expires_at <= now:
        return BreakGlassStatus.EXPIRED
    return BreakGlassStatus.ACTIVE if grant.starts_at <= now else BreakGlassStatus.PENDING


def _may_break_glass(actor: Principal) -> bool:
    return actor.user_id is not None and (actor.is_staff or Role.ADMIN in actor.roles)


def may_approve(actor: Principal) -> bool:
    """Supervisors and admins, with a second factor."""
    return actor.user_id is not None and actor.mfa and actor.has_role(Role.SUPERVISOR, Role.ADMIN)


def _check_request(reason: str, minutes: int, policy: BreakGlassPolicy) -> str:
    errors = []
    reason = " ".join(reason.split())
    if meaningful_chars(reason) < MIN_REASON_CHARS:
        errors.append(
            FieldError("/reason", f"must explain the emergency in {MIN_REASON_CHARS}+ letters or digits")
        )
    elif len(reason) > MAX_REASON_CHARS:
        errors.append(FieldError("/reason", f"must have at most {MAX_REASON_CHARS} characters"))
    if not 1 <= minutes <= policy.max_minutes:
        errors.append(FieldError("/minutes", f"must be between 1 and {policy.max_minutes}"))
    if errors:
        raise InvalidInput("The break-glass request is invalid.", errors=errors)
    return reason


async def request_grant(
    store: BreakGlassStore,
    *,
    actor: Principal,
    tenant_id: TenantId,
    category: BreakGlassCategory,
    reason: str,
    minutes: int | None,
    policy: BreakGlassPolicy,
    now: datetime | None = None,
) -> BreakGlassGrant:
    """Ask for access to ``tenant_id``: active at once, or pending when a second approver is required."""
    if not _may_break_glass(actor) or actor.user_id is None:
        raise Forbidden("Only staff and administrators may break the glass.")
    if not actor.mfa:
        raise Forbidden("Log in again with multi-factor authentication to break the glass.")
    minutes = policy.default_minutes if minutes is None else minutes
    reason = _check_request(reason, minutes, policy)
    now = now or utcnow()
    await store.lock_person(actor.user_id)
    if await store.requests_since(actor.user_id, now - _DAY) >= policy.max_grants_per_day:
        raise TooManyGrants(
            f"At most {policy.max_grants_per_day} break-glass requests per person in 24 hours; "
            "ask a supervisor for a staff assignment instead."
        )
    await store.bind(tenant_id)
    if await store.is_assigned(tenant_id, actor.user_id):
        raise Conflict("You are assigned to this tenant; break-glass is for access outside assignments.")
    starts = None if policy.require_approval else now
    grant = BreakGlassGrant(
        tenant_id=tenant_id,
        id=uuid.uuid4(),
        user_id=actor.user_id,
        category=category,
        reason=reason,
        minutes=minutes,
        requires_approval=policy.require_approval,
        created_at=now,
        starts_at=starts,
        expires_at=starts + timedelta(minutes=minutes) if starts else None,
    )
    return await store.add(grant)


async def approve_grant(
    store: BreakGlassStore,
    *,
    actor: Principal,
    tenant_id: TenantId,
    grant_id: uuid.UUID,
    now: datetime | None = None,
) -> BreakGlassGrant:
    """A second person lets a pending grant start; its window runs from now."""
    if not may_approve(actor) or actor.user_id is None:
        raise Forbidden("Only a supervisor or an administrator with MFA may approve break-glass access.")
    now = now or utcnow()
    await store.bind(tenant_id)
    grant = await store.get_for_update(tenant_id, grant_id)
    if grant is None:
        raise NotFound
    if grant.user_id == actor.user_id:
        raise Forbidden("A break-glass grant cannot be approved by the person who asked for it.")
    status = grant_status(grant, now)
    if status is not BreakGlassStatus.PENDING:
        raise Conflict(f"Only a pending grant can be approved; this one is {status}.")
    return await store.approve(
        grant, approver=actor.user_id, at=now, expires_at=now + timedelta(minutes=grant.minutes)
    )


async def revoke_grant(
    store: BreakGlassStore,
    *,
    actor: Principal,
    tenant_id: TenantId,
    grant_id: uuid.UUID,
    now: datetime | None = None,
) -> tuple[BreakGlassGrant, bool]:
    """End a grant now: the person it was issued to, or a supervisor or admin with MFA. Returns the grant
    and whether this call revoked it (revoking twice changes nothing).

    Someone else's grant is "not found" to a caller who may not revoke it (not found and not yours are one).
    """
    if actor.user_id is None:
        raise NotFound
    await store.bind(tenant_id)
    grant = await store.get_for_update(tenant_id, grant_id)
    if grant is None or (grant.user_id != actor.user_id and not actor.has_role(Role.SUPERVISOR, Role.ADMIN)):
        raise NotFound
    if grant.user_id != actor.user_id and not actor.mfa:
        raise Forbidden("Log in again with multi-factor authentication to revoke another person's grant.")
    if grant.revoked_at is not None:
        return grant, False
    return await store.revoke(grant, by=actor.user_id, at=now or utcnow()), True
