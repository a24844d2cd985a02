"""The state machine on the real database: every legal transition moves the claim and logs its event;
every illegal one is a 409 naming the current state, and changes nothing."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.claims import states
from rcm.claims.service import move
from rcm.claims.states import TRANSITIONS, Cause, ClaimState
from rcm.config import Settings
from rcm.kit.errors import Conflict
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims, practice_scope, rows
from tests.support import Api


def test_every_state_has_its_transitions_and_the_terminal_ones_none() -> None:
    assert set(TRANSITIONS) == set(ClaimState)
    assert all(target in ClaimState for targets in TRANSITIONS.values() for target in targets)
    assert TRANSITIONS[ClaimState.CLOSED] == TRANSITIONS[ClaimState.VOIDED] == frozenset()
    # Every state but the first is reachable, and from every non-terminal state a claim can be ended.
    reachable = set().union(*TRANSITIONS.values())
    assert reachable == set(ClaimState) - {ClaimState.CREATED}
    for state, targets in TRANSITIONS.items():
        if state not in states.TERMINAL and state is not ClaimState.SUBMITTED:
            assert targets & states.TERMINAL, state


async def _set_state(owner_engine: AsyncEngine, claim_id: uuid.UUID, state: ClaimState) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(
            text("UPDATE rcm.claim SET state = :s WHERE id = :c"), {"s": state.value, "c": claim_id}
        )


async def test_every_transition_legal_or_refused(
    *,
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    claim_id = await claims.new(intake, practice)
    legal = illegal = 0
    for current, target in itertools.product(ClaimState, ClaimState):
        await _set_state(owner_engine, claim_id, current)
        events_before = len(
            await rows(owner_engine, "SELECT 1 FROM rcm.claim_event WHERE claim_id = :c", c=claim_id)
        )
        if states.allowed(current, target):
            async with practice_scope(sessions, settings, practice) as scope:
                moved = await move(scope, claim_id, target, cause=Cause.SYSTEM, reason="matrix")
            assert moved.state is target
            logged = await rows(
                owner_engine,
                "SELECT from_state, to_state, cause, reason FROM rcm.claim_event WHERE claim_id = :c"
                " ORDER BY created_at DESC, id LIMIT 1",
                c=claim_id,
            )
            assert logged == [(current.value, target.value, "system", "matrix")]
            legal += 1
        else:
            with pytest.raises(Conflict) as refused:
                async with practice_scope(sessions, settings, practice) as scope:
                    await move(scope, claim_id, target, cause=Cause.SYSTEM)
            assert [(e.pointer, e.detail) for e in refused.value.errors] == [
                ("/state", f"is {current.value}")
            ]
            assert current.value in refused.value.detail
            stored = await rows(owner_engine, "SELECT state FROM rcm.claim WHERE id = :c", c=claim_id)
            assert stored == [(current.value,)]
            after = await rows(owner_engine, "SELECT 1 FROM rcm.claim_event WHERE claim_id = :c", c=claim_id)
            assert len(after) == events_before
            illegal += 1
    assert legal == sum(len(t) for t in TRANSITIONS.values())
    assert legal + illegal == len(ClaimState) ** 2


async def test_claim_events_are_append_only_for_the_app_role(
    intake: Api,
    practice: Tenant,
    claims: Claims,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    claim_id = await claims.new(intake, practice)
    for statement in (
        "UPDATE rcm.claim_event SET reason = 'rewritten' WHERE claim_id = :c",
        "DELETE FROM rcm.claim_event WHERE claim_id = :c",
        "DELETE FROM rcm.claim WHERE id = :c",
        "UPDATE rcm.claim_line SET charge_cents = 1 WHERE claim_id = :c",
    ):
        with pytest.raises(Exception, match="permission denied"):
            async with practice_scope(sessions, settings, practice) as scope:
                await scope.session.execute(text(statement), {"c": claim_id})
