"""Break-glass rules at their boundaries, through the rules module's public API (``grant_status``,
``meaningful_chars``, ``request_grant``, ``approve_grant``): the edges the HTTP layer's own limits hide."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rcm.identity.break_glass import (
    MAX_REASON_CHARS,
    MIN_REASON_CHARS,
    PENDING_LAPSES_AFTER,
    BreakGlassPolicy,
    approve_grant,
    grant_status,
    meaningful_chars,
    request_grant,
    revoke_grant,
)
from rcm.identity.break_glass_store import BreakGlassStore
from rcm.identity.models import BreakGlassCategory, BreakGlassGrant, BreakGlassStatus
from rcm.identity.principal import Principal, Role
from rcm.identity.testing import user_principal
from rcm.kit.db import platform_transaction
from rcm.kit.errors import Forbidden, InvalidInput, NotFound
from rcm.kit.tenant import TenantId
from rcm.tenancy.models import Tenant
from tests.identity.conftest import make_user

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
POLICY = BreakGlassPolicy(default_minutes=30, max_minutes=60, require_approval=False, max_grants_per_day=3)
REASON = "Payer on the phone about a denied claim; the assigned biller is out"


def grant(**fields: object) -> BreakGlassGrant:
    values: dict[str, object] = {
        "tenant_id": uuid.uuid4(),
        "id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "category": BreakGlassCategory.PAYER_DEADLINE,
        "reason": REASON,
        "minutes": 30,
        "requires_approval": False,
        "created_at": NOW - timedelta(minutes=1),
        "starts_at": NOW - timedelta(minutes=1),
        "expires_at": NOW + timedelta(minutes=29),
        "revoked_at": None,
    }
    values.update(fields)
    return BreakGlassGrant(**values)


def test_a_grant_status_at_each_boundary() -> None:
    assert grant_status(grant(), NOW) is BreakGlassStatus.ACTIVE
    assert grant_status(grant(starts_at=NOW), NOW) is BreakGlassStatus.ACTIVE
    assert grant_status(grant(starts_at=NOW + timedelta(seconds=1)), NOW) is BreakGlassStatus.PENDING
    assert grant_status(grant(expires_at=NOW), NOW) is BreakGlassStatus.EXPIRED
    assert grant_status(grant(expires_at=NOW + timedelta(seconds=1)), NOW) is BreakGlassStatus.ACTIVE
    assert grant_status(grant(revoked_at=NOW), NOW) is BreakGlassStatus.REVOKED
    assert grant_status(grant(revoked_at=NOW, expires_at=NOW), NOW) is BreakGlassStatus.REVOKED
    waiting = {"starts_at": None, "expires_at": None}
    assert grant_status(grant(**waiting, created_at=NOW), NOW) is BreakGlassStatus.PENDING
    assert grant_status(grant(**waiting, revoked_at=NOW), NOW) is BreakGlassStatus.REVOKED
    lapse = NOW - PENDING_LAPSES_AFTER
    assert grant_status(grant(**waiting, created_at=lapse), NOW) is BreakGlassStatus.LAPSED
    fresh = lapse + timedelta(seconds=1)
    assert grant_status(grant(**waiting, created_at=fresh), NOW) is BreakGlassStatus.PENDING
    # Half a window is no window: either end missing is pending.
    assert grant_status(grant(expires_at=None, created_at=NOW), NOW) is BreakGlassStatus.PENDING
    assert grant_status(grant(starts_at=None, created_at=NOW), NOW) is BreakGlassStatus.PENDING


def test_filler_is_not_a_reason() -> None:
    assert meaningful_chars("abcd" * 10) == 0  # four distinct characters: filler
    assert meaningful_chars("abcde" * 4) == 20
    assert meaningful_chars("ab cd e!") == 5


Sessions = async_sessionmaker[AsyncSession]


async def _request(
    sessions: Sessions, actor: Principal, *, reason: str = REASON, minutes: int | None = None
) -> None:
    async with platform_transaction(sessions) as session:
        await request_grant(
            BreakGlassStore(session),
            actor=actor,
            tenant_id=TenantId(uuid.uuid4()),
            category=BreakGlassCategory.PAYER_DEADLINE,
            reason=reason,
            minutes=minutes,
            policy=POLICY,
            now=NOW,
        )


@pytest.mark.parametrize(
    ("reason", "minutes", "pointers"),
    [
        # Only the HTTP layer's length limit hid this (a real reason, so the too-short rule does not fire).
        ((REASON + " ") * (MAX_REASON_CHARS // len(REASON) + 1), 30, ["/reason"]),
        ("abcde" * (MIN_REASON_CHARS // 5 - 1), 30, ["/reason"]),
        (REASON, 0, ["/minutes"]),
        (REASON, 61, ["/minutes"]),
        ("too short", 0, ["/reason", "/minutes"]),
    ],
)
async def test_request_limits_are_checked_by_the_rules_themselves(
    sessions: Sessions, reason: str, minutes: int, pointers: list[str]
) -> None:
    biller = user_principal(Role.BILLER, mfa=True)
    with pytest.raises(InvalidInput) as refused:
        await _request(sessions, biller, reason=reason, minutes=minutes)
    assert [e.pointer for e in refused.value.errors] == pointers


@pytest.mark.parametrize(
    "actor",
    [
        user_principal(Role.BILLER),  # no MFA
        user_principal(Role.ADMIN),  # no MFA
        user_principal(Role.PRACTICE_OWNER, mfa=True),
        user_principal(Role.AUDITOR, mfa=True),
        dataclasses.replace(user_principal(Role.CODER, mfa=True), user_id=None),
    ],
)
async def test_who_may_ask(sessions: Sessions, actor: Principal) -> None:
    with pytest.raises(Forbidden):
        await _request(sessions, actor)


@pytest.mark.parametrize(
    "actor",
    [
        user_principal(Role.SUPERVISOR),  # no MFA
        user_principal(Role.ADMIN),
        user_principal(Role.CODER, mfa=True),
        user_principal(Role.BILLER, mfa=True),
        user_principal(Role.AUDITOR, mfa=True),
    ],
)
async def test_who_may_not_approve(sessions: Sessions, actor: Principal) -> None:
    async with platform_transaction(sessions) as session:
        with pytest.raises(Forbidden):
            await approve_grant(
                BreakGlassStore(session), actor=actor, tenant_id=TenantId(uuid.uuid4()), grant_id=uuid.uuid4()
            )


async def test_a_caller_who_is_no_person_revokes_nothing(
    sessions: Sessions, control_sessions: Sessions, tenant: Tenant
) -> None:
    """A grant is revoked by a person (the holder, a supervisor or an admin with MFA): a token that names no
    person, whatever roles it claims, finds no grant to revoke."""
    holder = await make_user(control_sessions, ["biller"])
    async with platform_transaction(control_sessions) as session:
        grant_row = await request_grant(
            BreakGlassStore(session),
            actor=user_principal(Role.BILLER, user_id=holder.id, mfa=True),
            tenant_id=TenantId(tenant.id),
            category=BreakGlassCategory.PAYER_DEADLINE,
            reason=REASON,
            minutes=None,
            policy=POLICY,
        )
    nobody = dataclasses.replace(user_principal(Role.ADMIN, Role.SUPERVISOR, mfa=True), user_id=None)
    async with platform_transaction(control_sessions) as session:
        with pytest.raises(NotFound):
            await revoke_grant(
                BreakGlassStore(session), actor=nobody, tenant_id=TenantId(tenant.id), grant_id=grant_row.id
            )
        store = BreakGlassStore(session)
        await store.bind(TenantId(tenant.id))
        still = await store.get_for_update(TenantId(tenant.id), grant_row.id)
        assert still is not None
        assert still.revoked_at is None


async def test_one_persons_requests_are_counted_one_after_the_other(
    sessions: Sessions, control_sessions: Sessions, tenant: Tenant
) -> None:
    """The daily limit cannot be raced: a request waits while another of the same person is being counted;
    another person's request does not."""
    busy, free = await make_user(control_sessions, ["biller"]), await make_user(control_sessions, ["biller"])
    policy = POLICY

    async def ask(person: uuid.UUID) -> BreakGlassGrant:
        async with platform_transaction(control_sessions) as session:
            await session.execute(text("SET LOCAL lock_timeout = '300ms'"))
            return await request_grant(
                BreakGlassStore(session),
                actor=user_principal(Role.BILLER, user_id=person, mfa=True),
                tenant_id=TenantId(tenant.id),
                category=BreakGlassCategory.SYSTEM_OUTAGE,
                reason=REASON,
                minutes=None,
                policy=policy,
            )

    async with platform_transaction(sessions) as holder:
        await BreakGlassStore(holder).lock_person(busy.id)
        with pytest.raises(DBAPIError, match="lock timeout"):
            await ask(busy.id)
        assert (await ask(free.id)).user_id == free.id
    assert (await ask(busy.id)).user_id == busy.id
