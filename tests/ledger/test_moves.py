"""An 835 of several claims moves them in a few statements (``Applying.move_all``), with what moving them one
at a time wrote: one claim event per transition (a still-submitted claim is accepted first, then
adjudicated), each claim's row where its last event leaves it, and one webhook per transition, its body
naming the same states at the same instant as the event."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from rcm.blobs.store import BlobStore
from rcm.claims.applying import Applying, Move
from rcm.claims.repository import ClaimRepository
from rcm.claims.states import Cause, ClaimState
from rcm.config import Settings
from rcm.interchanges import service as files
from rcm.interchanges.models import Direction
from rcm.tenancy.models import Tenant
from tests.claims.conftest import Claims, practice_scope, rows
from tests.ledger.support import apply_era, era_file, paid_in_part, submitted_claim
from tests.support import Api
from tests.webhooks.conftest import Receiver, receiver, subscribe  # noqa: F401 - the receiver fixture


async def test_a_multi_claim_835_writes_one_event_and_one_webhook_per_transition(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    submitted = [await submitted_claim(claims, intake, practice) for _ in range(2)]
    accepted = [await submitted_claim(claims, intake, practice) for _ in range(2)]
    for claim, _ in accepted:
        await claims.walk(practice, claim.id, ClaimState.ACCEPTED, icn=f"ICN-{claim.patient_control_number}")
    await subscribe(intake, receiver.url, "claim.status_changed")
    paid = [paid_in_part(claim, lines) for claim, lines in [*submitted, *accepted]]

    outcome = await apply_era(sessions, settings, practice, era_file(*paid))

    assert (outcome.matched, outcome.partially_paid, outcome.unchanged, outcome.unmatched) == (4, 4, 0, 0)
    ids = [claim.id for claim, _ in [*submitted, *accepted]]
    events = await rows(
        owner_engine,
        "SELECT claim_id, from_state, to_state, created_at, reason, payer_claim_control_number, x12_file_id"
        " FROM rcm.claim_event WHERE tenant_id = :t AND claim_id = ANY (:c) AND cause = 'remittance'"
        " ORDER BY created_at",
        t=practice.id,
        c=ids,
    )
    moves = [(e.claim_id, e.from_state, e.to_state) for e in events]
    assert sorted(moves) == sorted(
        [
            *[(c.id, "submitted", "accepted") for c, _ in submitted],
            *[(c.id, "accepted", "partially_paid") for c, _ in [*submitted, *accepted]],
        ]
    )
    for claim, _ in submitted:  # accepted, then adjudicated: in that order
        mine = [e.to_state for e in events if e.claim_id == claim.id]
        assert mine == ["accepted", "partially_paid"]
    assert len({e.x12_file_id for e in events}) == 1
    assert all(e.payer_claim_control_number == "ICN7700001" for e in events)
    assert [e.reason for e in events if e.to_state == "accepted"] == [None, None]
    assert all(e.reason.startswith("835 CLP02 1; CO-45") for e in events if e.to_state == "partially_paid")

    states = await rows(
        owner_engine,
        "SELECT id, state, state_changed_at, payer_claim_control_number FROM rcm.claim WHERE id = ANY (:c)",
        c=ids,
    )
    last = {e.claim_id: e for e in events}
    for row in states:
        assert (row.state, row.payer_claim_control_number) == ("partially_paid", "ICN7700001")
        assert row.state_changed_at == last[row.id].created_at

    deliveries = await rows(
        owner_engine,
        "SELECT event_id, payload FROM rcm.webhook_delivery WHERE tenant_id = :t"
        " AND event_type = 'claim.status_changed'",
        t=practice.id,
    )
    bodies = [json.loads(d.payload) for d in deliveries]
    by_claim = [b for b in bodies if b["data"]["cause"] == "remittance"]
    assert len({d.event_id for d in deliveries}) == len(deliveries)  # one delivery per event: one subscriber
    assert sorted(
        (b["data"]["claim_id"], b["data"]["from_state"], b["data"]["to_state"]) for b in by_claim
    ) == (sorted((str(claim_id), before, after) for claim_id, before, after in moves))
    instants = {(str(e.claim_id), e.to_state): e.created_at.isoformat() for e in events}
    for body in by_claim:
        assert body["timestamp"] == instants[(body["data"]["claim_id"], body["data"]["to_state"])]
        assert body["type"] == "claim.status_changed"
        assert set(body["data"]) == {
            "claim_id",
            "encounter_id",
            "frequency",
            "from_state",
            "to_state",
            "cause",
        }


async def test_move_all_writes_what_moving_one_at_a_time_wrote(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    """The same moves, made by ``move`` one at a time on one set of claims and by ``move_all`` on a twin set:
    the same counts, claims (in order), events and webhooks per claim, and states. Among them a claim moved
    twice in the file (accepted, adjudicated, then re-adjudicated: three steps), one already where the file
    puts it, and one the machine has no such move for."""
    await subscribe(intake, receiver.url, "claim.status_changed")
    S = ClaimState
    # (state before, moves: (to, reason, icn)...)
    plan = [
        (S.SUBMITTED, [(S.PAID, "835 CLP02 1", "ICN1")]),
        (S.ACCEPTED, [(S.PARTIALLY_PAID, "835 CLP02 1; CO-45", "ICN2")]),
        (
            S.SUBMITTED,
            [(S.PARTIALLY_PAID, "835 CLP02 1; PR-2", None), (S.DENIED, "835 CLP02 4; CO-50", "ICN3")],
        ),
        (S.PAID, [(S.PAID, "835 CLP02 1", "ICN4")]),  # already there: unchanged
        (S.READY, [(S.DENIED, "835 CLP02 4", None)]),  # never sent: no such move, unchanged
    ]
    twins: list[list[uuid.UUID]] = [[], []]
    for group in twins:
        for before, _ in plan:
            claim_id = await claims.new(intake, practice)
            path = {
                S.READY: [],
                S.SUBMITTED: [S.SUBMITTED],
                S.ACCEPTED: [S.SUBMITTED, S.ACCEPTED],
                S.PAID: [S.SUBMITTED, S.ACCEPTED, S.PAID],
            }[before]
            await claims.walk(practice, claim_id, *path)
            group.append(claim_id)

    done: list[Applying] = []
    store = BlobStore()
    for index, group in enumerate(twins):
        async with practice_scope(sessions, settings, practice) as scope:
            row, _ = await files.keep(
                scope, store, f"ISA*twin {index}".encode(), direction=Direction.INBOUND, connector="test"
            )
            work = Applying(scope, row.id, Cause.REMITTANCE)
            repo = scope.repo(ClaimRepository)
            found = {claim_id: await repo.get(claim_id) for claim_id in group}
            moves = [
                (found[claim_id], to, reason, icn)
                for claim_id, (_, steps) in zip(group, plan, strict=True)
                for to, reason, icn in steps
            ]
            if index == 0:  # one at a time, as ``_apply_chunk`` did
                for claim, to, reason, icn in moves:
                    assert claim is not None
                    through = S.ACCEPTED if claim.state is S.SUBMITTED else None
                    await work.move(claim, to, reason=reason, payer_claim_control_number=icn, through=through)
            else:
                await work.move_all(
                    [
                        Move(c, to, reason, icn, through=S.ACCEPTED)
                        for c, to, reason, icn in moves
                        if c is not None
                    ]
                )
            done.append(work)

    one, many = done
    assert one.counts == many.counts
    assert one.counts == {"paid": 1, "partially_paid": 2, "denied": 1, "unchanged": 2}
    position = [{claim_id: i for i, claim_id in enumerate(group)} for group in twins]
    assert [position[0][c] for c in one.claims] == [position[1][c] for c in many.claims] == [0, 1, 2]

    async def written(group: list[uuid.UUID], file_id: uuid.UUID) -> list[Any]:
        events = await rows(
            owner_engine,
            "SELECT claim_id, from_state, to_state, reason, payer_claim_control_number, created_at"
            " FROM rcm.claim_event WHERE claim_id = ANY (:c) AND x12_file_id = :f ORDER BY created_at",
            c=group,
            f=file_id,
        )
        deliveries = await rows(
            owner_engine,
            "SELECT payload FROM rcm.webhook_delivery WHERE tenant_id = :t"
            " AND payload::jsonb #>> '{data,cause}' = 'remittance' ORDER BY created_at",
            t=practice.id,
        )
        bodies = [json.loads(d.payload) for d in deliveries]
        found = await rows(
            owner_engine,
            "SELECT id, state, payer_claim_control_number FROM rcm.claim WHERE id = ANY (:c)",
            c=group,
        )
        states = {r.id: (r.state, r.payer_claim_control_number) for r in found}
        out = []
        for i, claim_id in enumerate(group):
            mine = [
                (e.from_state, e.to_state, e.reason, e.payer_claim_control_number)
                for e in events
                if e.claim_id == claim_id
            ]
            hooks = [
                (b["data"]["from_state"], b["data"]["to_state"], b["timestamp"])
                for b in bodies
                if b["data"]["claim_id"] == str(claim_id)
            ]
            instants = [e.created_at.isoformat() for e in events if e.claim_id == claim_id]
            assert [h[2] for h in hooks] == instants  # each webhook at its event's instant, in order
            out.append((i, mine, [h[:2] for h in hooks], states[claim_id]))
        return out

    first = await written(twins[0], one.file_id)
    assert first == await written(twins[1], many.file_id)
    steps = {i: [(m[0], m[1]) for m in mine] for i, mine, _, _ in first}
    assert steps == {
        0: [("submitted", "accepted"), ("accepted", "paid")],
        1: [("accepted", "partially_paid")],
        2: [("submitted", "accepted"), ("accepted", "partially_paid"), ("partially_paid", "denied")],
        3: [],
        4: [],
    }


async def test_a_clp_whose_clp01_is_unknown_is_matched_by_its_clp07(
    *,
    claims: Claims,
    intake: Api,
    practice: Tenant,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    owner_engine: AsyncEngine,
) -> None:
    """CLP01 (our CLM01) first; a CLP whose CLP01 names none of the practice's claims is matched by CLP07, the
    payer's claim control number learnt on acceptance; one naming neither is unmatched."""
    by_pcn, by_icn = [await submitted_claim(claims, intake, practice) for _ in range(2)]
    await claims.walk(practice, by_icn[0].id, ClaimState.ACCEPTED, icn="ICNBYCLP07")
    paid = [
        paid_in_part(*by_pcn),
        msgspec.structs.replace(
            paid_in_part(*by_icn),
            patient_control_number="NOSUCHCLAIM1",
            payer_claim_control_number="ICNBYCLP07",
        ),
        msgspec.structs.replace(
            paid_in_part(*by_icn),
            patient_control_number="NOSUCHCLAIM2",
            payer_claim_control_number="NOSUCHICN",
        ),
    ]

    outcome = await apply_era(sessions, settings, practice, era_file(*paid))

    assert (outcome.matched, outcome.unmatched, outcome.partially_paid) == (2, 1, 2)
    found = await rows(
        owner_engine,
        "SELECT id, state, payer_claim_control_number FROM rcm.claim WHERE id = ANY (:c)",
        c=[by_pcn[0].id, by_icn[0].id],
    )
    assert {(r.id, r.state, r.payer_claim_control_number) for r in found} == {
        (by_pcn[0].id, "partially_paid", "ICN7700001"),
        (by_icn[0].id, "partially_paid", "ICNBYCLP07"),
    }
